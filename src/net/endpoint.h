// Endpoints: where handoffd listens and clients connect.
//
//   ipc://<path>        a Unix socket; <path> at most 107 bytes (the kernel's sun_path limit)
//   tcp://<host>:<port> host a name, an IPv4 address, [an IPv6 address] or * (bind only)
//
// Thread safety: pure functions, except that the probes touch the file system.

#ifndef HANDOFF_NET_ENDPOINT_H_
#define HANDOFF_NET_ENDPOINT_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff::net {

inline constexpr size_t kMaxIpcPathLength = 107;

// OK, or InvalidArgument saying what a valid endpoint looks like.
Status ValidateEndpoint(std::string_view endpoint);

bool IsIpc(std::string_view endpoint);
// The file path of an ipc:// endpoint.
std::string IpcPath(std::string_view endpoint);

// True if a process accepts connections on the ipc endpoint now (a plain connect() probe).
// Always true for non-ipc endpoints, which cannot be probed this cheaply.
bool IpcListening(std::string_view endpoint);
// What a client finds at an ipc endpoint: a process accepting connections (always, for
// other transports), nothing (no socket file, or a stale one), or a socket this user may not
// connect to.
enum class IpcProbe { kListening, kNothing, kDenied };
IpcProbe ProbeIpc(std::string_view endpoint);
// The message for kDenied: "permission denied on PATH: add this user to group G ...".
std::string IpcDeniedMessage(std::string_view endpoint);

// The group given access to the agent socket ([node] agent_socket_group): its id, or
// InvalidArgument when no such group exists here.
Result<gid_t> LookUpGroup(std::string_view name);

// Before binding an ipc endpoint: creates its directory (mode 0700, or 0770 owned by `group`
// when one is given); refuses, with InvalidArgument, a directory that is not this user's or
// that others may write (they could replace the socket), and, with Unavailable, an endpoint a
// live process already listens on. A stale socket file left by a killed process is fine:
// binding replaces it. With a group, an existing directory of this user's is given to that
// group with mode 0770 (it should hold nothing but the socket).
Status PrepareIpcBind(std::string_view endpoint, std::optional<gid_t> group = std::nullopt);
// After binding an ipc endpoint: sets the socket's mode to 0600 (0660 and `group` with one),
// whatever the umask.
Status RestrictIpcSocket(std::string_view endpoint, std::optional<gid_t> group = std::nullopt);
// After a clean stop: removes the socket file of an ipc:// endpoint this process bound, so that
// a client finds no socket rather than one nobody answers. Nothing for other transports, or
// when the path is no longer a socket.
void RemoveIpcSocket(std::string_view endpoint);

}  // namespace handoff::net

#endif  // HANDOFF_NET_ENDPOINT_H_
