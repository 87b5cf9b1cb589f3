/* The `drover` command: one file per subcommand, each an entry point
 * int dv__cmd_<name>(int argc, char **argv) where argv[0] is the
 * subcommand's name. Add a subcommand here and in the table of main.c. */
#ifndef DROVER_CLI_H
#define DROVER_CLI_H

/* drover run [options] -- PROGRAM [ARGS...] (cmd_run.c) */
int dv__cmd_run(int argc, char **argv);

/* drover agent --head EP --job ID --index I (cmd_agent.c): one node of a
 * multi-node job, started by drover run's launcher. */
int dv__cmd_agent(int argc, char **argv);

/* drover top (cmd_top.c, telemetry). Weak: a subcommand whose file is not
 * in the build is left out of the table at run time. */
int dv__cmd_top(int argc, char **argv) __attribute__((weak));

#endif
