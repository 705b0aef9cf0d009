// Raw Unix stream sockets for tests that send a daemon bytes no client would.

#ifndef HANDOFF_TESTS_SUPPORT_UNIX_SOCKET_H_
#define HANDOFF_TESTS_SUPPORT_UNIX_SOCKET_H_

#include <string>

namespace handoff::testing {

// A blocking socket connected to `path`; fails the test if it cannot connect.
int ConnectUnixStream(const std::string& path);

// True once the other end hangs up on `fd` (what it sends meanwhile is read and dropped),
// within 10 seconds.
bool HangsUp(int fd);

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_UNIX_SOCKET_H_
