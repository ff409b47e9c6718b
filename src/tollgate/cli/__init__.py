"""The `tollgate` command: every subcommand is a thin call into the library."""
