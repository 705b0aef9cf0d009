#include "net/endpoint.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace handoff::net {
namespace {

constexpr std::string_view kIpc = "ipc://";
constexpr std::string_view kTcp = "tcp://";

Status Invalid(std::string_view endpoint, std::string_view why) {
  return Status::InvalidArgument("invalid endpoint '" + std::string(endpoint) +
                                 "': " + std::string(why) +
                                 "; expected ipc:///path/to/socket or tcp://host:port");
}

}  // namespace

bool IsIpc(std::string_view endpoint) { return endpoint.substr(0, kIpc.size()) == kIpc; }

std::string IpcPath(std::string_view endpoint) { return std::string(endpoint.substr(kIpc.size())); }

Status ValidateEndpoint(std::string_view endpoint) {
  if (IsIpc(endpoint)) {
    std::string path = IpcPath(endpoint);
    if (path.empty()) return Invalid(endpoint, "the socket path is empty");
    if (path.size() > kMaxIpcPathLength) {
      return Invalid(endpoint, "the socket path is longer than 107 bytes");
    }
    return Status::OK();
  }
  if (endpoint.substr(0, kTcp.size()) == kTcp) {
    std::string_view rest = endpoint.substr(kTcp.size());
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return Invalid(endpoint, "no host:port");
    std::string_view port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5) return Invalid(endpoint, "bad port");
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return Invalid(endpoint, "bad port");
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return Invalid(endpoint, "port out of range 1-65535");
    return Status::OK();
  }
  return Invalid(endpoint, "unknown transport");
}

IpcProbe ProbeIpc(std::string_view endpoint) {
  if (!IsIpc(endpoint)) return IpcProbe::kListening;
  std::string path = IpcPath(endpoint);
  if (path.size() > kMaxIpcPathLength) return IpcProbe::kNothing;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IpcProbe::kListening;  // cannot tell; let the caller try
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int error = errno;
  ::close(fd);
  if (rc == 0) return IpcProbe::kListening;
  return error == EACCES || error == EPERM ? IpcProbe::kDenied : IpcProbe::kNothing;
}

bool IpcListening(std::string_view endpoint) { return ProbeIpc(endpoint) == IpcProbe::kListening; }

std::string IpcDeniedMessage(std::string_view endpoint) {
  const std::filesystem::path path(IpcPath(endpoint));
  // The socket's group, else (when its directory cannot even be searched) the directory's.
  struct stat st {};
  std::string group_name;
  if (::stat(path.c_str(), &st) == 0 || ::stat(path.parent_path().c_str(), &st) == 0) {
    if (const struct group* g = ::getgrgid(st.st_gid)) group_name = g->gr_name;
    if (group_name.empty()) group_name = std::to_string(st.st_gid);
  }
  std::string message = "permission denied on " + path.string() + ": ";
  if (group_name.empty()) return message + "this user may not use the daemon's socket";
  return message + "add this user to group " + group_name +
         " (the socket's group: its daemon's [node] agent_socket_group), then log in again";
}

Result<gid_t> LookUpGroup(std::string_view name) {
  const std::string n(name);
  std::vector<char> buffer(16384);
  struct group g {};
  struct group* found = nullptr;
  int rc = ::getgrnam_r(n.c_str(), &g, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    return Status::InvalidArgument("no group named '" + n + "' on this host" +
                                   (rc != 0 ? std::string(" (") + std::strerror(rc) + ")" : "") +
                                   ": create it (groupadd " + n +
                                   ") or name an existing one in [node] agent_socket_group");
  }
  return found->gr_gid;
}

Status PrepareIpcBind(std::string_view endpoint, std::optional<gid_t> group) {
  if (!IsIpc(endpoint)) return Status::OK();
  std::filesystem::path path(IpcPath(endpoint));
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Status::IOError("cannot create directory " + dir.string() +
                             " for the socket: " + ec.message());
    }
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  // Whoever may write the directory may replace the socket with their own and read what
  // agents send: it must be this user's and closed to others.
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::IOError("cannot inspect " + dir.string() + ": " + std::strerror(errno));
  }
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(
        "the socket's directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
        ", not to this user (uid " + std::to_string(::geteuid()) +
        "): another user could replace the socket. Remove it, or choose an endpoint in a "
        "directory of your own");
  }
  if (group) {
    // The group's members may reach the socket, and nobody else: rwx for the owner and the
    // group (0770), whatever it was.
    if (st.st_gid != *group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0) {
      return Status::IOError("cannot give the socket's directory " + dir.string() + " to group " +
                             std::to_string(*group) + ": " + std::strerror(errno) +
                             " (handoffd's user must be a member of agent_socket_group)");
    }
    if (::chmod(dir.c_str(), S_IRWXU | S_IRWXG) != 0) {
      return Status::IOError("cannot set the mode of " + dir.string() + ": " +
                             std::strerror(errno));
    }
  } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument("the socket's directory " + dir.string() +
                                   " may be written by others (mode " + mode +
                                   "): another user could replace the socket. Run chmod "
                                   "go-w " +
                                   dir.string() +
                                   ", set [node] agent_socket_group, or choose a directory of "
                                   "your own");
  }
  if (IpcListening(endpoint)) {
    return Status::Unavailable("another process is already listening on " + std::string(endpoint) +
                               " (is another handoffd running? stop it or choose another "
                               "agent_endpoint)");
  }
  return Status::OK();
}

Status RestrictIpcSocket(std::string_view endpoint, std::optional<gid_t> group) {
  if (!IsIpc(endpoint)) return Status::OK();
  const std::string path = IpcPath(endpoint);
  // Explicit, whatever the umask was when ZeroMQ created it: the owner only, or the owner and
  // the group.
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return Status::IOError("cannot give " + path + " to group " + std::to_string(*group) + ": " +
                           std::strerror(errno));
  }
  const mode_t mode = group ? (S_IRUSR | S_IWUSR | S_IRGRP | S_IWGRP) : (S_IRUSR | S_IWUSR);
  if (::chmod(path.c_str(), mode) != 0) {
    return Status::IOError("cannot set the mode of " + path + ": " + std::strerror(errno));
  }
  return Status::OK();
}

void RemoveIpcSocket(std::string_view endpoint) {
  if (!IsIpc(endpoint)) return;
  const std::string path = IpcPath(endpoint);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == ::geteuid()) {
    ::unlink(path.c_str());
  }
}

}  // namespace handoff::net
