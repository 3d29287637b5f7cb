/* barge: the CLI. An ecspresso-style deploy tool speaking only the public,
 * SigV4-signed APIs. This first version knows its version and its help; the
 * deploy commands arrive with the services issue. */
#include <stdio.h>
#include <string.h>

#define BARGE_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f, "Usage: barge [--help] COMMAND [ARGS]\n"
               "Deploy and operate services on barge (or Amazon ECS).\n"
               "\n"
               "Commands:\n"
               "  version    print the version\n"
               "  help       show this help\n"
               "\n"
               "Run 'barge COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf("Usage: barge version\nPrint barge's version.\n");
            return 0;
        }
        printf("barge v%s\n", BARGE_VERSION);
        return 0;
    }
    fprintf(stderr, "barge: unknown command '%s' (see 'barge --help')\n", cmd);
    return 2;
}
