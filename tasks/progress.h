// Training progress for humans (brief: live line on a TTY, a plain log line every few seconds
// otherwise) and the monotonic clock the runner times everything with. Writes only to the
// FILE* the caller hands in (the CLI passes stderr; NULL = silent).      -- tasks/progress.c
#ifndef MAELRE_PROGRESS_H
#define MAELRE_PROGRESS_H
#include <stddef.h>
#include <stdio.h>

double clock_seconds(void);   // CLOCK_MONOTONIC, seconds

typedef struct {
    FILE *out;            // NULL: silent
    int tty;              // live line (\r) instead of log lines
    char label[96];       // e.g. "lra-listops/maelre"
    size_t total_steps;   // 0 when training for a time budget
    double time_budget;   // seconds, 0 when training for steps
    double t0, last_print;
    double interval;      // seconds between lines (0.2 on a TTY, 5 otherwise)
    size_t last_step;     // step of the last line printed
    int printed_live;     // a live line is on screen and needs a newline
} Progress;

void progress_init(Progress *p, FILE *out, const char *label, size_t total_steps, double time_budget);
// Called after each step; prints when the interval has passed (or force).
void progress_step(Progress *p, size_t step, double loss, double samples_per_s, int force);
// The same with the elapsed seconds given (training time only, when evaluations pause the clock).
void progress_step_at(Progress *p, size_t step, double loss, double samples_per_s, double elapsed, int force);
// Evaluation progress: "<label>: evaluating <what> 512/2000 (120.3 samples/s) ETA 0:13", at the
// same intervals as training lines (a live line on a TTY); force prints regardless.
void progress_eval(Progress *p, const char *what, size_t done, size_t total, double t_start, int force);
// A one-off line (ends any live line first).
void progress_note(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_done(Progress *p);   // ends a live line
// "1:02:03" / "2:03" for ETA and durations.
void format_duration(char *buf, size_t n, double seconds);

#endif
