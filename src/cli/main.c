/* drover: the command-line front end. It only dispatches to subcommands;
 * each lives in its own cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "drover/drover.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* One line per subcommand (declared in cli.h). */
static const struct command commands[] = {
    {"run", dv__cmd_run, "run PROGRAM as the main process of a job"},
    {"agent", dv__cmd_agent, "a node's agent (started by drover run)"},
    {"top", dv__cmd_top,
     "live CPU, memory and GPU bars of this machine or a job"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: drover COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].fn)
            fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`drover COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("drover %s\n", DROVER_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].fn && !strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "drover: unknown command '%s' (try drover --help)\n",
            argv[1]);
    return 2;
}
