#include "net/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace handoff::net {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string ModeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IOError(Errno("writing " + path));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status SyncDir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(Errno("opening " + dir.string()));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError(Errno("syncing " + dir.string()));
  return Status::OK();
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

Status ValidateCurveKey(std::string_view key) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("invalid CURVE key: " + why +
                                   "; a key is 40 characters of Z85, as printed by "
                                   "`handoffd --show-public-key`");
  };
  if (key.size() != kCurveKeyTextLength) {
    return bad(std::to_string(key.size()) + " characters, not 40");
  }
  const std::string text(key);
  uint8_t bytes[32];
  if (zmq_z85_decode(bytes, text.c_str()) == nullptr) return bad("not Z85 text");
  return Status::OK();
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  if (!CurveAvailable()) {
    return Status::Unavailable(
        "this libzmq was built without CURVE; peer_security = \"curve\" "
        "needs libzmq with libsodium (Debian's libzmq5 has it)");
  }
  char public_key[kCurveKeyTextLength + 1];
  char secret_key[kCurveKeyTextLength + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Status::IOError(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  CurveKeyPair pair{public_key, secret_key};
  std::memset(secret_key, 0, sizeof(secret_key));
  return pair;
}

Result<CurveKeyPair> KeyPairFromSecret(std::string_view secret_key) {
  HANDOFF_RETURN_IF_ERROR(ValidateCurveKey(secret_key));
  const std::string secret(secret_key);
  char public_key[kCurveKeyTextLength + 1];
  if (zmq_curve_public(public_key, secret.c_str()) != 0) {
    return Status::IOError(std::string("zmq_curve_public: ") + zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{public_key, secret};
}

Result<CurveKeyPair> ReadSecretKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("no secret key file at " + path);
    return Status::IOError(Errno("cannot read secret key file " + path));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("secret key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument("secret key file " + path + " may be read by others (mode " +
                                   ModeText(st.st_mode) + "); run: chmod 600 " + path);
  }
  std::ifstream in(path);
  if (!in) return Status::IOError(Errno("cannot read secret key file " + path));
  std::string line, key;
  int keys = 0;
  for (int n = 0; std::getline(in, line) && n < 64; ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    key = line.substr(start);
    ++keys;
  }
  if (keys != 1) {
    return Status::InvalidArgument("secret key file " + path + " must hold exactly one key line (" +
                                   std::to_string(keys) +
                                   " found); make a new one with "
                                   "`handoffd --keygen FILE`");
  }
  auto pair = KeyPairFromSecret(key);
  if (!pair.ok()) {
    return Status::InvalidArgument("secret key file " + path + ": " + pair.status().message());
  }
  return pair;
}

Status WriteSecretKeyFile(const std::string& path, const CurveKeyPair& pair) {
  const std::filesystem::path target(path);
  static std::atomic<uint64_t> writes{0};
  const std::string temp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++writes);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(Errno("cannot create " + temp));
  std::ostringstream text;
  text << "# handoff node secret key (CURVE, Z85). Keep it private: mode 0600.\n"
       << "# public key: " << pair.public_key << "\n"
       << pair.secret_key << "\n";
  Status s = ::fchmod(fd, 0600) == 0 ? Status::OK() : Status::IOError(Errno("chmod " + temp));
  if (s.ok()) s = WriteAll(fd, text.str(), temp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::IOError(Errno("syncing " + temp));
  ::close(fd);
  // link() never replaces: of two writers racing, one wins and the other learns of it.
  if (s.ok() && ::link(temp.c_str(), path.c_str()) != 0) {
    s = errno == EEXIST
            ? Status::AlreadyExists("a secret key file already exists at " + path +
                                    "; it is never overwritten (remove it first, or write the new "
                                    "key to another file)")
            : Status::IOError(Errno("cannot create " + path));
  }
  ::unlink(temp.c_str());
  if (s.ok()) s = SyncDir(target.parent_path());
  return s;
}

Result<CurveKeyPair> LoadOrCreateSecretKeyFile(const std::string& path) {
  auto read = ReadSecretKeyFile(path);
  if (!read.status().IsNotFound()) return read;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IOError("cannot create directory " + dir.string() + ": " + ec.message());
  }
  HANDOFF_ASSIGN_OR_RETURN(CurveKeyPair pair, GenerateCurveKeyPair());
  Status written = WriteSecretKeyFile(path, pair);
  if (written.IsAlreadyExists()) return ReadSecretKeyFile(path);  // another process won
  HANDOFF_RETURN_IF_ERROR(written);
  return pair;
}

}  // namespace handoff::net
