// One binary for every x86-64 (issue 12), checked the way an older node would run it: Debian's
// qemu-user emulates a CPU without AVX-512 (-cpu Haswell: AVX2 + FMA) and one without AVX
// (-cpu Nehalem), and the built CLI (MAELRE_BIN) must run there, choose the avx2 / plain kernel
// set, record it, and refuse a forced set the emulated CPU lacks with exit 2. Skipped when
// qemu-x86_64 is not installed (scripts/install-deps.sh installs qemu-user). About 10 s.
// OMP_WAIT_POLICY is set so that the CLI does not re-exec itself (/proc/self/exe would be the
// host binary run natively); OPENBLAS_CORETYPE is removed so that OpenBLAS detects the
// emulated CPU itself (a forced Haswell core type dies with an illegal instruction on Nehalem:
// OpenBLAS's code, not ours).
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/model.h"   // METHOD_COUNT: profile --method all writes one row per method

static const char *QEMU = "/usr/bin/qemu-x86_64";

static const char *need(void) {
    const char *bin = getenv("MAELRE_BIN");
    if (!bin || !*bin) cr_skip_test("MAELRE_BIN is not set (run through `make test`)");
    if (access(QEMU, X_OK) != 0) cr_skip_test("%s not installed (apt-get install qemu-user): portability not checked", QEMU);
#if !defined(__x86_64__)
    cr_skip_test("not an x86-64 host");
#endif
#if defined(__SANITIZE_ADDRESS__)
    // ASan's shadow memory (terabytes of reserved address space) does not map under qemu-user:
    // the sanitizer build's binary is killed there before main. The normal build is the one checked.
    cr_skip_test("sanitizer build: ASan binaries do not run under qemu-user; run the normal `make test`");
#endif
    return bin;
}

// Runs `qemu-x86_64 -cpu CPU MAELRE_BIN args...` with MAELRE_KERNELS=kernels (NULL: unset);
// stderr into errbuf. Returns the exit status (-signal when killed).
static int emu(const char *cpu, const char *kernels, const char *const *args, char *errbuf, size_t n) {
    const char *bin = need();
    char path[] = "/tmp/maelre-qemu-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        setenv("OMP_WAIT_POLICY", "passive", 1);
        unsetenv("OPENBLAS_CORETYPE");
        if (kernels) setenv("MAELRE_KERNELS", kernels, 1);
        else unsetenv("MAELRE_KERNELS");
        const char *argv[40] = {QEMU, "-cpu", cpu, bin};
        for (size_t i = 0; args[i] && i < 35; i++) argv[i + 4] = args[i];
        execv(QEMU, (char *const *)argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    ssize_t got = pread(fd, errbuf, n - 1, 0);
    errbuf[got > 0 ? got : 0] = 0;
    close(fd);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

// list, then every method's inference and training step on a short ragged length (the default
// model: head width 32, so vanilla and ToMe take the fused kernels where the set has them).
static void runs_on(const char *cpu, const char *want, const char *lacking) {
    static char err[1 << 16];
    const char *const list[] = {"list", NULL};
    int rc = emu(cpu, NULL, list, err, sizeof err);
    cr_assert_eq(rc, 0, "-cpu %s: list exited %d: %s", cpu, rc, err);
    char dir[] = "/tmp/maelre-qemu-prof-XXXXXX", path[300], line[4096];
    cr_assert(mkdtemp(dir));
    const char *const prof[] = {"profile", "--method", "all", "--seq-len", "70", "--batch", "2", "--train", "--threads", "1",
                                "--min-time", "0", "--min-reps", "1", "--out", dir, NULL};
    rc = emu(cpu, NULL, prof, err, sizeof err);
    cr_assert_eq(rc, 0, "-cpu %s: profile exited %d: %s", cpu, rc, err);
    snprintf(path, sizeof path, "%s/profile.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    cr_assert(fgets(line, sizeof line, f) && strstr(line, ",status,") && (strstr(line, ",kernels,") || strstr(line, ",kernels\n")), "header %s", line);
    char tail[32];
    snprintf(tail, sizeof tail, ",%s\n", want);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        rows++;
        size_t L = strlen(line), T = strlen(tail);
        cr_assert(L > T && !strcmp(line + L - T, tail), "-cpu %s: expected kernels %s: %s", cpu, want, line);
        cr_assert(strstr(line, ",ok,"), "-cpu %s: %s", cpu, line);
    }
    fclose(f);
    cr_assert_eq(rows, METHOD_COUNT, "-cpu %s: one row per method", cpu);
    unlink(path);
    snprintf(path, sizeof path, "%s/profile.json", dir);
    unlink(path);
    rmdir(dir);
    // forcing a set the emulated CPU lacks: exit 2 with the reason
    rc = emu(cpu, lacking, list, err, sizeof err);
    cr_assert_eq(rc, 2, "-cpu %s MAELRE_KERNELS=%s: exit %d", cpu, lacking, rc);
    cr_assert(strstr(err, "lacks"), "-cpu %s: stderr %s", cpu, err);
    // and forcing the set it has works
    rc = emu(cpu, want, list, err, sizeof err);
    cr_assert_eq(rc, 0, "-cpu %s MAELRE_KERNELS=%s: exit %d: %s", cpu, want, rc, err);
}

Test(portable, haswell_runs_the_avx2_set, .timeout = 120) { runs_on("Haswell", "avx2", "avx512"); }
Test(portable, nehalem_runs_the_plain_set, .timeout = 120) { runs_on("Nehalem", "plain", "avx2"); }
