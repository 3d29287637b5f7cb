/* What the CLI writes: ecspresso's log lines on stderr (time, the
 * "<service>/<cluster>" app name, a level tag), status and events on stdout,
 * and on a terminal a live one-line status that other output clears first.
 * Colour only goes to a terminal and never when NO_COLOR is set. Also the
 * interruption flag that lets waits stop cleanly on Ctrl-C. */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static volatile sig_atomic_t interrupted;

bool barge_cli_interrupted(void)
{
    return interrupted != 0;
}

double barge_cli_now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void barge_cli_sleep(double seconds)
{
    double end = barge_cli_now_mono() + seconds;
    while (!interrupted) {
        double left = end - barge_cli_now_mono();
        if (left <= 0)
            break;
        if (left > 0.2)
            left = 0.2;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

void barge_cli_fmt_time(double epoch, char out[20])
{
    time_t t = (time_t)epoch;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 20, "%Y/%m/%d %H:%M:%S", &tm);
}

const char *barge_cli_color(struct barge_cli_app *app, bool out, const char *code)
{
    return (out ? app->color_out : app->color_err) ? code : "";
}

void barge_cli_progress_clear(struct barge_cli_app *app)
{
    if (app->progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        app->progress_shown = false;
    }
}

void barge_cli_progress(struct barge_cli_app *app, const char *fmt, ...)
{
    if (!app->tty_err)
        return;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = barge_xvasprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K%s", s);
    fflush(stderr);
    app->progress_shown = true;
}

static void vlog(struct barge_cli_app *app, int level, const char *fmt, va_list ap)
{
    if (level == BARGE_CLI_DEBUG && !app->debug)
        return;
    barge_cli_progress_clear(app);
    fflush(stdout);
    char ts[20];
    barge_cli_fmt_time((double)time(NULL), ts);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    _cleanup_free_ char *name = NULL;
    if (app->cfg && app->cfg->service)
        name = barge_xasprintf(" %s/%s", app->cfg->service, app->cfg->cluster);
    else if (app->cfg && app->cfg->path)
        name = barge_xasprintf(" %s", app->cfg->cluster);
    static const char *tags[] = {"[DEBUG] ", "[INFO] ", "[WARNING] ", "[ERROR] "};
    static const char *colors[] = {"\033[2m", "", "\033[33m", "\033[31m"};
    const char *tag = level >= 0 ? tags[level] : "";
    const char *on = level >= 0 ? barge_cli_color(app, false, colors[level]) : "";
    const char *off = *on ? "\033[0m" : "";
    fprintf(stderr, "%s%s %s%s%s%s\n", ts, name ? name : "", on, tag, msg, off);
    fflush(stderr);
}

void barge_cli_log(struct barge_cli_app *app, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(app, -1, fmt, ap);
    va_end(ap);
}

void barge_cli_logl(struct barge_cli_app *app, enum barge_cli_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(app, (int)level, fmt, ap);
    va_end(ap);
}

void barge_cli_out(struct barge_cli_app *app, const char *fmt, ...)
{
    barge_cli_progress_clear(app);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

bool barge_cli_confirm(struct barge_cli_app *app, const char *question)
{
    if (!isatty(0))
        return false;
    barge_cli_progress_clear(app);
    fprintf(stderr, "%s [y/N]: ", question);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof(line), stdin))
        return false;
    return line[0] == 'y' || line[0] == 'Y';
}

int barge_cli_fail(struct barge_cli_app *app, struct barge_error *err)
{
    if (barge_cli_interrupted())
        barge_cli_logl(app, BARGE_CLI_WARN, "Interrupted");
    else
        barge_cli_logl(app, BARGE_CLI_ERROR, "FAILED. %s", err ? err->message : "unknown error");
    barge_error_free(err);
    return 1;
}

static void on_signal(int sig)
{
    interrupted = 1;
}

void barge_cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
