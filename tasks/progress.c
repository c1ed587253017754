#include "tasks/progress.h"
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double clock_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void format_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || !isfinite(s)) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void progress_init(Progress *p, FILE *out, const char *label, size_t total_steps, double time_budget) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = out && isatty(fileno(out));
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total_steps = total_steps;
    p->time_budget = time_budget;
    p->t0 = clock_seconds();
    p->last_print = p->t0;
    p->interval = p->tty ? 0.2 : 5.0;
}

void progress_step(Progress *p, size_t step, double loss, double sps, int force) {
    progress_step_at(p, step, loss, sps, clock_seconds() - p->t0, force);
}

void progress_eval(Progress *p, const char *what, size_t done, size_t total, double t_start, int force) {
    if (!p || !p->out) return;
    double now = clock_seconds();
    if (!force && now - p->last_print < p->interval) return;
    p->last_print = now;
    double el = now - t_start, sps = el > 0 ? (double)done / el : 0;
    char e[32];
    format_duration(e, sizeof e, sps > 0 ? (double)(total - done) / sps : NAN);
    if (p->tty) {
        fprintf(p->out, "\r\033[K%s evaluating %s %zu/%zu (%.1f samples/s) ETA %s", p->label, what, done, total, sps, e);
        p->printed_live = 1;
    } else {
        fprintf(p->out, "%s: evaluating %s %zu/%zu (%.1f samples/s) ETA %s\n", p->label, what, done, total, sps, e);
    }
    fflush(p->out);
}

void progress_step_at(Progress *p, size_t step, double loss, double sps, double el, int force) {
    if (!p->out) return;
    double now = clock_seconds();
    if (!force && now - p->last_print < p->interval) return;
    if (force && !p->tty && step == p->last_step && step) return;   // that line is already out
    p->last_step = step;
    p->last_print = now;
    double frac = p->time_budget > 0 ? el / p->time_budget
                                     : (p->total_steps ? (double)step / (double)p->total_steps : 0);
    double eta = frac > 0 ? el * (1 - frac) / frac : NAN;
    if (eta < 0) eta = 0;
    char e[32], tot[32];
    format_duration(e, sizeof e, eta);
    if (p->time_budget > 0) snprintf(tot, sizeof tot, "%zu (%.0f%% of %.0fs)", step, 100 * frac, p->time_budget);
    else snprintf(tot, sizeof tot, "%zu/%zu", step, p->total_steps);
    if (p->tty) {
        fprintf(p->out, "\r\033[K%s step %s loss %.4f %.1f samples/s ETA %s", p->label, tot, loss, sps, e);
        p->printed_live = 1;
    } else {
        fprintf(p->out, "%s: step %s loss %.4f %.1f samples/s ETA %s\n", p->label, tot, loss, sps, e);
    }
    fflush(p->out);
}

void progress_done(Progress *p) {
    if (p->out && p->printed_live) {
        fputc('\n', p->out);
        fflush(p->out);
    }
    p->printed_live = 0;
}

void progress_note(Progress *p, const char *fmt, ...) {
    if (!p->out) return;
    progress_done(p);
    fprintf(p->out, "%s: ", p->label);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
}
