// handoffctl's command line: flags and subcommands, parsed with CLI11.
// Thread safety: call once from main.

#ifndef HANDOFF_CLI_APP_H_
#define HANDOFF_CLI_APP_H_

namespace handoff::cli {

// Parses argv, runs the chosen command and returns the process exit code.
int Main(int argc, char** argv);

}  // namespace handoff::cli

#endif  // HANDOFF_CLI_APP_H_
