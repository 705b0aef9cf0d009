// Free TCP ports on 127.0.0.1 for tests and benchmarks that start daemons on loopback.

#ifndef HANDOFF_TESTS_SUPPORT_FREE_PORT_H_
#define HANDOFF_TESTS_SUPPORT_FREE_PORT_H_

namespace handoff::testing {

// A port that is free, below the kernel's ephemeral range, and claimed by no other process
// that uses this function while the calling one runs; 0 if none is found.
//
// A port the kernel hands out (bind to port 0) is in the ephemeral range, and between the pick
// and the daemon's bind any outgoing connection on the machine (another test's peer link) may
// take it as its source port: "Address already in use". So ports come from below that range,
// and each is claimed for the rest of the process by an flock on a file named after it in
// $TMPDIR/handoff-test-ports, which keeps processes running in parallel from picking the same
// one. The lock goes with the process.
int ClaimTcpPort();

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_FREE_PORT_H_
