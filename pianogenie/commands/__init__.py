"""The `pianogenie` subcommands, one module each: `add_parser(subparsers)` registers the command and
`run(args) -> int` does it, calling the library. Each imports the library (and torch) only in `run`,
so that `pianogenie COMMAND --help` stays fast."""
