"""The `pianogenie` subcommands, one module each: `add_parser(subparsers)` registers the command and
`run(args) -> int` does it, calling the library. Each imports the library (and torch) only in `run`,
so that `pianogenie COMMAND --help` stays fast."""

# `--model` of the commands that publish the app (serve, build-site)
MODEL_HELP = (
    "an exported model folder (`pianogenie export`), a run folder / checkpoint to export, or a shipped genie "
    "by name (classical, pop); repeat it for several genies the player chooses among, the first the default "
    "(default: both shipped genies, classical first)"
)
