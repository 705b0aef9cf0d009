// cutfs: a FUSE filesystem that loses what was not flushed, as a disk does when the power goes.
//
//   cutfs BACKING MOUNTPOINT [--freeze-at OP:NAME:N] [--seed S] [--torn]
//
// Every file lives in BACKING, but data written to a file reaches BACKING only when the file is
// flushed (fsync or fdatasync); until then it is kept in this process's memory, and reads see
// it. On SIGUSR1 (the power cut) cutfs discards everything written since each file's last flush
// (with --torn, each unflushed 4 KiB page of it survives or not at random, as a disk may have
// written some of them), unmounts and exits 0; BACKING then holds exactly what a disk would
// after the cut, and a new cutfs over it is the machine booting again.
//
// What it models and what it does not (docs/reliability.md): file data is volatile until
// fsync/fdatasync, at page granularity with --torn, in any order. Metadata (create, unlink,
// rename, mkdir, truncate) is durable at once: the project's files are created once and then
// only written, so a lost create is not a case it tests. A flush is all or nothing: no page of
// it is torn.
//
// --freeze-at OP:NAME:N picks the moment of the cut: after the N-th OP ("write" or "fsync") on
// a file whose name contains NAME, counted from SIGHUP on (from the start with --armed), every
// later operation blocks, as if
// the machine had stopped, and cutfs prints "frozen" on stdout; the test then kills the daemon
// and sends SIGUSR1. SIGUSR2 freezes at once.
//
// Thread safety: FUSE calls in from several threads; one mutex guards all state.

#define _GNU_SOURCE
#define FUSE_USE_VERSION 35

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define PAGE 4096

// Unflushed data of one file: pages by index, each a full page image over what BACKING holds,
// with how much of the page is valid.
struct Page {
  uint64_t index;
  uint32_t valid;  // bytes of the page that the file holds (the last page may be short)
  char data[PAGE];
};

struct File {
  char path[PATH_MAX];
  uint64_t size;  // the file's size as its writers see it
  struct Page** pages;
  size_t npages, cap;
  struct File* next;
};

static char g_backing[PATH_MAX];
static struct File* g_files;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_thaw = PTHREAD_COND_INITIALIZER;
static int g_frozen;
static char g_freeze_op[16];
static char g_freeze_name[256];
static long g_freeze_n;  // 0: no trigger
static long g_freeze_seen;
static int g_armed;  // --freeze-at counts from SIGHUP on (the daemon is up by then)
static int g_torn;
static unsigned g_seed = 1;
static struct fuse* g_fuse;
static int g_cut;  // the power is off: every operation fails

// BACKING's path for a path under the mount (paths longer than PATH_MAX are cut short: they
// do not open).
static void Real(char* out, const char* path) {
  size_t a = strnlen(g_backing, PATH_MAX - 1);
  size_t b = strnlen(path, PATH_MAX - 1 - a);
  memcpy(out, g_backing, a);
  memcpy(out + a, path, b);
  out[a + b] = '\0';
}

// Blocks once frozen: the machine has stopped. After the cut, it returns (and the operation
// fails with EIO: nobody is there to see it).
static void WaitIfFrozen(void) {
  while (g_frozen && !g_cut) pthread_cond_wait(&g_thaw, &g_mu);
}

// Takes the lock for an operation: blocks while frozen; after the cut, fails it with EIO (the
// lock not held).
static int Enter(void) {
  pthread_mutex_lock(&g_mu);
  WaitIfFrozen();
  if (g_cut) {
    pthread_mutex_unlock(&g_mu);
    return -EIO;
  }
  return 0;
}

static void Freeze(void) {
  if (g_frozen) return;
  g_frozen = 1;
  printf("frozen\n");
  fflush(stdout);
}

// Counts an operation towards the --freeze-at trigger; freezes after it when it is the one.
static void Count(const char* op, const char* path) {
  if (!g_armed || g_freeze_n == 0 || strcmp(op, g_freeze_op) != 0 ||
      strstr(path, g_freeze_name) == NULL) {
    return;
  }
  if (++g_freeze_seen == g_freeze_n) Freeze();
}

static struct File* Find(const char* path) {
  for (struct File* f = g_files; f; f = f->next) {
    if (strcmp(f->path, path) == 0) return f;
  }
  return NULL;
}

static uint64_t BackingSize(const char* path) {
  char real[PATH_MAX];
  Real(real, path);
  struct stat st;
  return lstat(real, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static struct File* Track(const char* path) {
  struct File* f = Find(path);
  if (f) return f;
  f = calloc(1, sizeof(*f));
  if (!f) return NULL;
  snprintf(f->path, sizeof(f->path), "%s", path);
  f->size = BackingSize(path);
  f->next = g_files;
  g_files = f;
  return f;
}

static void Forget(struct File* f) {
  for (struct File** p = &g_files; *p; p = &(*p)->next) {
    if (*p == f) {
      *p = f->next;
      break;
    }
  }
  for (size_t i = 0; i < f->npages; ++i) free(f->pages[i]);
  free(f->pages);
  free(f);
}

static struct Page* FindPage(struct File* f, uint64_t index) {
  for (size_t i = 0; i < f->npages; ++i) {
    if (f->pages[i]->index == index) return f->pages[i];
  }
  return NULL;
}

// The page as the file holds it now: unflushed data, else BACKING's bytes.
static struct Page* LoadPage(struct File* f, uint64_t index) {
  struct Page* p = FindPage(f, index);
  if (p) return p;
  p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->index = index;
  char real[PATH_MAX];
  Real(real, f->path);
  int fd = open(real, O_RDONLY);
  if (fd >= 0) {
    ssize_t n = pread(fd, p->data, PAGE, (off_t)(index * PAGE));
    if (n > 0) p->valid = (uint32_t)n;
    close(fd);
  }
  if (f->npages == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 64;
    struct Page** grown = realloc(f->pages, cap * sizeof(*grown));
    if (!grown) {
      free(p);
      return NULL;
    }
    f->pages = grown;
    f->cap = cap;
  }
  f->pages[f->npages++] = p;
  return p;
}

// Writes the file's unflushed pages to BACKING (all, or with `torn` a random subset), and its
// size; then forgets them.
static int Persist(struct File* f, int torn, int sync) {
  char real[PATH_MAX];
  Real(real, f->path);
  int fd = open(real, O_WRONLY);
  if (fd < 0) return -errno;
  int rc = 0;
  uint64_t end = BackingSize(f->path);
  for (size_t i = 0; i < f->npages; ++i) {
    struct Page* p = f->pages[i];
    if (torn && (rand_r(&g_seed) & 1)) continue;
    uint64_t off = p->index * PAGE;
    uint32_t n = p->valid;
    if (pwrite(fd, p->data, n, (off_t)off) != (ssize_t)n) rc = -EIO;
    if (off + n > end) end = off + n;
  }
  // A file that was grown by writes keeps that length only for the pages that made it.
  if (!torn && f->size > end) {
    if (ftruncate(fd, (off_t)f->size) != 0) rc = -EIO;
  }
  if (sync && fsync(fd) != 0) rc = -EIO;
  close(fd);
  for (size_t i = 0; i < f->npages; ++i) free(f->pages[i]);
  f->npages = 0;
  return rc;
}

static int OpGetattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  (void)fi;
  int entered = Enter();
  if (entered != 0) return entered;
  char real[PATH_MAX];
  Real(real, path);
  int rc = lstat(real, st) == 0 ? 0 : -errno;
  struct File* f = Find(path);
  if (rc == 0 && f) st->st_size = (off_t)f->size;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpReaddir(const char* path, void* buf, fuse_fill_dir_t fill, off_t off,
                     struct fuse_file_info* fi, enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  char real[PATH_MAX];
  Real(real, path);
  DIR* d = opendir(real);
  if (!d) return -errno;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) fill(buf, e->d_name, NULL, 0, 0);
  closedir(d);
  return 0;
}

static int OpMkdir(const char* path, mode_t mode) {
  char real[PATH_MAX];
  Real(real, path);
  return mkdir(real, mode) == 0 ? 0 : -errno;
}

static int OpRmdir(const char* path) {
  char real[PATH_MAX];
  Real(real, path);
  return rmdir(real) == 0 ? 0 : -errno;
}

static int OpUnlink(const char* path) {
  int entered = Enter();
  if (entered != 0) return entered;
  char real[PATH_MAX];
  Real(real, path);
  int rc = unlink(real) == 0 ? 0 : -errno;
  struct File* f = Find(path);
  if (rc == 0 && f) Forget(f);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpRename(const char* from, const char* to, unsigned int flags) {
  if (flags != 0) return -EINVAL;
  int entered = Enter();
  if (entered != 0) return entered;
  char a[PATH_MAX], b[PATH_MAX];
  Real(a, from);
  Real(b, to);
  // What was written to the file goes with it, flushed first (a simplification: renames are
  // durable at once, see the header).
  struct File* f = Find(from);
  int rc = f ? Persist(f, 0, 1) : 0;
  if (rc == 0) rc = rename(a, b) == 0 ? 0 : -errno;
  if (f) Forget(f);
  struct File* g = Find(to);
  if (g) Forget(g);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpLink(const char* from, const char* to) {
  int entered = Enter();
  if (entered != 0) return entered;
  char a[PATH_MAX], b[PATH_MAX];
  Real(a, from);
  Real(b, to);
  // Flushed first: unflushed data is kept by path, and a file with two names would have two
  // (a file is linked once written, as the daemon's key file is, and not written again).
  struct File* f = Find(from);
  int rc = f ? Persist(f, 0, 1) : 0;
  if (rc == 0) rc = link(a, b) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpTruncate(const char* path, off_t size, struct fuse_file_info* fi) {
  (void)fi;
  int entered = Enter();
  if (entered != 0) return entered;
  struct File* f = Find(path);
  int rc = f ? Persist(f, 0, 0) : 0;
  char real[PATH_MAX];
  Real(real, path);
  if (rc == 0) rc = truncate(real, size) == 0 ? 0 : -errno;
  if (f) f->size = (uint64_t)size;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpCreate(const char* path, mode_t mode, struct fuse_file_info* fi) {
  char real[PATH_MAX];
  Real(real, path);
  int fd = open(real, fi->flags | O_CREAT, mode);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

static int OpOpen(const char* path, struct fuse_file_info* fi) {
  char real[PATH_MAX];
  Real(real, path);
  int fd = open(real, fi->flags & ~(O_TRUNC | O_CREAT | O_EXCL | O_DIRECT));
  if (fd < 0) return -errno;
  close(fd);
  if (fi->flags & O_TRUNC) return OpTruncate(path, 0, fi);
  return 0;
}

static int OpRead(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)fi;
  int entered = Enter();
  if (entered != 0) return entered;
  struct File* f = Find(path);
  int rc;
  if (!f) {
    char real[PATH_MAX];
    Real(real, path);
    int fd = open(real, O_RDONLY);
    if (fd < 0) {
      rc = -errno;
    } else {
      ssize_t n = pread(fd, buf, size, off);
      rc = n < 0 ? -errno : (int)n;
      close(fd);
    }
  } else {
    uint64_t end = (uint64_t)off + size;
    if (end > f->size) end = f->size;
    char real[PATH_MAX];
    Real(real, path);
    int fd = open(real, O_RDONLY);
    size_t done = 0;
    for (uint64_t at = (uint64_t)off; at < end;) {
      uint64_t in = at % PAGE;
      uint64_t n = PAGE - in;
      if (n > end - at) n = end - at;
      // Unflushed data where there is some; else what BACKING holds; a hole reads as zeros.
      struct Page* p = FindPage(f, at / PAGE);
      if (p) {
        for (uint64_t i = 0; i < n; ++i) buf[done + i] = in + i < p->valid ? p->data[in + i] : 0;
      } else {
        ssize_t got = fd >= 0 ? pread(fd, buf + done, n, (off_t)at) : 0;
        if (got < 0) got = 0;
        memset(buf + done + got, 0, n - (uint64_t)got);
      }
      done += n;
      at += n;
    }
    if (fd >= 0) close(fd);
    rc = (int)done;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpWrite(const char* path, const char* buf, size_t size, off_t off,
                   struct fuse_file_info* fi) {
  (void)fi;
  int entered = Enter();
  if (entered != 0) return entered;
  struct File* f = Track(path);
  int rc = (int)size;
  for (uint64_t at = (uint64_t)off, done = 0; f && done < size;) {
    struct Page* p = LoadPage(f, at / PAGE);
    if (!p) {
      rc = -ENOMEM;
      break;
    }
    uint64_t in = at % PAGE;
    uint64_t n = PAGE - in;
    if (n > size - done) n = size - done;
    if (in > p->valid) memset(p->data + p->valid, 0, in - p->valid);
    memcpy(p->data + in, buf + done, n);
    if (in + n > p->valid) p->valid = (uint32_t)(in + n);
    done += n;
    at += n;
  }
  if (!f) rc = -ENOMEM;
  if (rc > 0 && (uint64_t)off + size > f->size) f->size = (uint64_t)off + size;
  if (rc > 0) Count("write", path);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpFsync(const char* path, int datasync, struct fuse_file_info* fi) {
  (void)datasync;
  (void)fi;
  int entered = Enter();
  if (entered != 0) return entered;
  struct File* f = Find(path);
  int rc = f ? Persist(f, 0, 1) : 0;
  Count("fsync", path);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static int OpFsyncdir(const char* path, int datasync, struct fuse_file_info* fi) {
  (void)path;
  (void)datasync;
  (void)fi;
  return 0;  // metadata is durable at once
}

static int OpStatfs(const char* path, struct statvfs* st) {
  (void)path;
  return statvfs(g_backing, st) == 0 ? 0 : -errno;
}

static int OpChmod(const char* path, mode_t mode, struct fuse_file_info* fi) {
  (void)fi;
  char real[PATH_MAX];
  Real(real, path);
  return chmod(real, mode) == 0 ? 0 : -errno;
}

static int OpChown(const char* path, uid_t uid, gid_t gid, struct fuse_file_info* fi) {
  (void)fi;
  char real[PATH_MAX];
  Real(real, path);
  return lchown(real, uid, gid) == 0 ? 0 : -errno;
}

static int OpUtimens(const char* path, const struct timespec tv[2], struct fuse_file_info* fi) {
  (void)fi;
  char real[PATH_MAX];
  Real(real, path);
  return utimensat(AT_FDCWD, real, tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int OpAccess(const char* path, int mask) {
  char real[PATH_MAX];
  Real(real, path);
  return access(real, mask) == 0 ? 0 : -errno;
}

// File locks (LMDB's lock file, the data directory's lock) are kept by the kernel for this
// mount (flock and POSIX locks are local to it), which is all one daemon per directory needs.

static void* OpInit(struct fuse_conn_info* conn, struct fuse_config* cfg) {
  (void)conn;
  cfg->use_ino = 0;
  cfg->kernel_cache = 0;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  return NULL;
}

// SIGUSR1, SIGUSR2 and SIGTERM are taken here, not in handlers, so the cut can use the lock.
static void* SignalThread(void* arg) {
  sigset_t* set = arg;
  while (1) {
    int sig = 0;
    if (sigwait(set, &sig) != 0) continue;
    pthread_mutex_lock(&g_mu);
    if (sig == SIGUSR2 || sig == SIGHUP) {
      if (sig == SIGUSR2) Freeze();
      if (sig == SIGHUP) g_armed = 1;
      pthread_mutex_unlock(&g_mu);
      continue;
    }
    // The cut (SIGUSR1), or a plain stop (SIGTERM: everything written is flushed first).
    while (g_files) {
      struct File* f = g_files;
      if (sig != SIGUSR1) {
        Persist(f, 0, 1);
      } else if (g_torn) {
        Persist(f, 1, 1);
      }
      Forget(f);
    }
    g_cut = sig == SIGUSR1 ? 1 : 2;
    pthread_cond_broadcast(&g_thaw);
    pthread_mutex_unlock(&g_mu);
    fuse_exit(g_fuse);
    fuse_unmount(g_fuse);  // wakes the loop's threads
    return NULL;
  }
}

static const struct fuse_operations kOps = {
    .getattr = OpGetattr,
    .mkdir = OpMkdir,
    .unlink = OpUnlink,
    .rmdir = OpRmdir,
    .rename = OpRename,
    .link = OpLink,
    .chmod = OpChmod,
    .chown = OpChown,
    .truncate = OpTruncate,
    .open = OpOpen,
    .read = OpRead,
    .write = OpWrite,
    .statfs = OpStatfs,
    .fsync = OpFsync,
    .readdir = OpReaddir,
    .fsyncdir = OpFsyncdir,
    .init = OpInit,
    .access = OpAccess,
    .create = OpCreate,
    .utimens = OpUtimens,
};

static int Usage(void) {
  fprintf(stderr,
          "usage: cutfs BACKING MOUNTPOINT [--freeze-at write|fsync:NAME:N] [--armed] "
          "[--seed S] [--torn]\n");
  return 2;
}

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  if (!realpath(argv[1], g_backing)) {
    fprintf(stderr, "cutfs: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  const char* mountpoint = argv[2];
  for (int i = 3; i < argc; ++i) {
    if (strcmp(argv[i], "--torn") == 0) {
      g_torn = 1;
    } else if (strcmp(argv[i], "--armed") == 0) {
      g_armed = 1;  // --freeze-at counts from the start (a cut during the first boot)
    } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      g_seed = (unsigned)strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--freeze-at") == 0 && i + 1 < argc) {
      char spec[300];
      snprintf(spec, sizeof(spec), "%s", argv[++i]);
      char* op = strtok(spec, ":");
      char* name = strtok(NULL, ":");
      char* n = strtok(NULL, ":");
      if (!op || !name || !n || (strcmp(op, "write") != 0 && strcmp(op, "fsync") != 0)) {
        return Usage();
      }
      snprintf(g_freeze_op, sizeof(g_freeze_op), "%s", op);
      snprintf(g_freeze_name, sizeof(g_freeze_name), "%s", name);
      g_freeze_n = strtol(n, NULL, 10);
    } else {
      return Usage();
    }
  }
  // Every thread, FUSE's included, leaves these signals to SignalThread.
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  char* fuse_argv[] = {argv[0], "-o", "default_permissions", NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
  g_fuse = fuse_new(&args, &kOps, sizeof(kOps), NULL);
  if (!g_fuse) return 1;
  if (fuse_mount(g_fuse, mountpoint) != 0) {
    fprintf(stderr, "cutfs: cannot mount on %s\n", mountpoint);
    return 1;
  }
  pthread_t signals;
  pthread_create(&signals, NULL, SignalThread, &set);
  printf("mounted\n");
  fflush(stdout);
  struct fuse_loop_config loop = {.clone_fd = 0, .max_idle_threads = 10};
  fuse_loop_mt(g_fuse, &loop);
  pthread_join(signals, NULL);
  fuse_destroy(g_fuse);
  return 0;
}
