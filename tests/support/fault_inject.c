/* A fault injector for integration tests, preloaded into handoffd (LD_PRELOAD): makes chosen
 * fdatasync calls fail with EIO, the way a failing disk does.
 *
 * HANDOFF_FAULT_FILE names a control file. While it exists, each fdatasync on a file whose
 * path ends with SUFFIX consults it: the file holds "SUFFIX SKIP FAIL"; the first SKIP such
 * calls go through, the next FAIL fail, and the counts are written back as they are used.
 * Without the file, or for other files, fdatasync is the real one. Not for production. */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int ends_with(const char* s, const char* suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return m <= n && strcmp(s + n - m, suffix) == 0;
}

/* 1 if this call should fail. */
static int should_fail(int fd) {
  const char* control = getenv("HANDOFF_FAULT_FILE");
  if (control == NULL) return 0;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n < 0) return 0;
  path[n] = '\0';
  int fail = 0;
  pthread_mutex_lock(&lock);
  FILE* f = fopen(control, "r");
  if (f != NULL) {
    char suffix[256];
    long skip = 0, count = 0;
    if (fscanf(f, "%255s %ld %ld", suffix, &skip, &count) == 3 && ends_with(path, suffix)) {
      if (skip > 0) {
        --skip;
      } else if (count > 0) {
        --count;
        fail = 1;
      }
      FILE* w = fopen(control, "w");
      if (w != NULL) {
        fprintf(w, "%s %ld %ld\n", suffix, skip, count);
        fclose(w);
      }
    }
    fclose(f);
  }
  pthread_mutex_unlock(&lock);
  return fail;
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  if (should_fail(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}
