// handoffctl: the command line for handoff (docs/cli.md).
#include "cli/app.h"

int main(int argc, char** argv) { return handoff::cli::Main(argc, argv); }
