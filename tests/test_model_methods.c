// The method table (core/model_methods.c), row by row: every row is complete and named
// uniquely (names parse back, descriptions for `list`); for a range of lengths every block's
// kind is one the row declares (so its parameters are laid out) and takes proportional
// attention whenever an earlier block merged; merge targets stay in [1, n]; MAELRE's coarse
// kind is the config field (default efficient) and an exact or non-proportional coarse kind
// is refused.
#include <criterion/criterion.h>
#include <string.h>
#include "core/model_internal.h"
#include "core/status.h"

static ModelConfig cfg_for(Method m) {
    ModelConfig c;
    model_config_default(&c, m, 7, 0, 600, 3);
    c.dim = 8; c.heads = 2; c.mlp = 12; c.blocks = 4;
    c.linformer_k = 5;
    c.performer_features = 6;
    c.nystrom_landmarks = 5;
    c.nystrom_conv = 3;
    c.n_stages = 2;
    c.stages[0] = (MaelreStage){2, 0.3f};
    c.stages[1] = (MaelreStage){2, 0.5f};
    c.switch_threshold = 40;
    return c;
}

Test(model_methods, every_row_is_complete_and_consistent) {
    for (int mi = 0; mi < METHOD_COUNT; mi++) {
        const MethodRow *r = method_row((Method)mi);
        cr_assert(r && r->name && r->name[0] && r->description && r->description[0], "method %d", mi);
        cr_assert(r->kind && r->kinds_used && r->merges && r->merge_target && r->match && r->check, "%s: a function is missing", r->name);
        cr_assert_str_eq(method_name((Method)mi), r->name);
        cr_assert_str_eq(method_description((Method)mi), r->description);
        Method back;
        cr_assert_eq(method_parse(r->name, &back), 0);
        cr_assert_eq(back, (Method)mi);
        for (int j = 0; j < mi; j++) cr_assert_str_neq(method_row((Method)j)->name, r->name);
        ModelConfig c = cfg_for((Method)mi);
        char err[256];
        cr_assert_eq(model_config_check(&c, err, sizeof err), MB_OK, "%s: %s", r->name, err);
        unsigned used = r->kinds_used(&c);
        cr_assert_neq(used, 0u, "%s uses no kind", r->name);
        for (size_t n0 = 1; n0 <= 600; n0 = n0 * 3 + 1) {
            size_t n = n0;
            int merged = 0;
            for (size_t b = 0; b < c.blocks; b++) {
                AttnKind k = r->kind(&c, b, n);
                cr_assert(used >> k & 1u, "%s block %zu N=%zu: kind %s not declared", r->name, b, n, attn_kind_name(k));
                if (merged) cr_assert(attn_kind(k)->proportional, "%s: %s runs after merging but ignores sizes", r->name, attn_kind_name(k));
                if (r->merges(&c, b)) {
                    size_t t = r->merge_target(&c, b, n);
                    cr_assert(t >= 1 && t <= n, "%s block %zu: %zu -> %zu", r->name, b, n, t);
                    n = t;
                    merged = 1;
                }
            }
        }
    }
    cr_assert_null(method_row(METHOD_COUNT));
}

Test(model_methods, maelre_coarse_kind_is_a_config_field) {
    ModelConfig c = cfg_for(METHOD_MAELRE);
    cr_assert_eq(c.maelre_coarse, ATTN_EFFICIENT, "default");
    const MethodRow *r = method_row(METHOD_MAELRE);
    cr_expect_eq(r->kind(&c, 0, 600), ATTN_EFFICIENT);
    cr_expect_eq(r->kind(&c, 0, 40), ATTN_SOFTMAX);
    char err[256];
    c.maelre_coarse = ATTN_SOFTMAX;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "maelre_coarse"), "%s", err);
    c.maelre_coarse = ATTN_LINFORMER;   // ignores log s: cannot run after merging
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    c.maelre_coarse = ATTN_NYSTROM;     // proportional, but not one of SPEC §9.6's coarse kinds
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "performer"), "%s", err);
    c.maelre_coarse = ATTN_KIND_COUNT;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    AttnKind k;
    cr_expect_eq(attn_kind_parse("efficient", &k), 0);
    cr_expect_eq(k, ATTN_EFFICIENT);
}

// SPEC §9.6: linear and performer serve as MAELRE's coarse kind (both honour log s); the
// ablations: efficient = efficient in every block without merging, maelre-exact = softmax in
// every block with MAELRE's merge schedule; the new baselines use their kind everywhere.
Test(model_methods, coarse_kinds_and_new_rows) {
    char err[256];
    AttnKind coarse[] = {ATTN_EFFICIENT, ATTN_LINEAR, ATTN_PERFORMER};
    for (size_t i = 0; i < 3; i++) {
        ModelConfig c = cfg_for(METHOD_MAELRE);
        c.maelre_coarse = coarse[i];
        cr_expect_eq(model_config_check(&c, err, sizeof err), MB_OK, "%s: %s", attn_kind_name(coarse[i]), err);
        const MethodRow *r = method_row(METHOD_MAELRE);
        cr_expect_eq(r->kind(&c, 0, 600), coarse[i]);
        cr_expect_eq(r->kind(&c, 3, 40), ATTN_SOFTMAX);
        cr_expect_eq(r->kinds_used(&c), (1u << coarse[i]) | (1u << ATTN_SOFTMAX));
    }
    struct { Method m; AttnKind k; const char *name; } every[] = {
        {METHOD_PERFORMER, ATTN_PERFORMER, "performer"}, {METHOD_NYSTROMFORMER, ATTN_NYSTROM, "nystromformer"},
        {METHOD_LINEAR, ATTN_LINEAR, "linear"}, {METHOD_EFFICIENT, ATTN_EFFICIENT, "efficient"},
    };
    for (size_t i = 0; i < sizeof every / sizeof *every; i++) {
        ModelConfig c = cfg_for(every[i].m);
        const MethodRow *r = method_row(every[i].m);
        cr_expect_str_eq(r->name, every[i].name);
        cr_expect_eq(r->kinds_used(&c), 1u << every[i].k);
        for (size_t b = 0; b < c.blocks; b++) {
            cr_expect_eq(r->kind(&c, b, 600), every[i].k);
            cr_expect_eq(r->kind(&c, b, 3), every[i].k);
            cr_expect_eq(r->merges(&c, b), 0, "%s merges", r->name);
        }
    }
    ModelConfig c = cfg_for(METHOD_MAELRE_EXACT), cm = cfg_for(METHOD_MAELRE);
    const MethodRow *r = method_row(METHOD_MAELRE_EXACT), *rm = method_row(METHOD_MAELRE);
    cr_expect_str_eq(r->name, "maelre-exact");
    cr_expect_eq(r->kinds_used(&c), 1u << ATTN_SOFTMAX);
    for (size_t b = 0; b < c.blocks; b++) {
        cr_expect_eq(r->kind(&c, b, 600), ATTN_SOFTMAX);
        cr_expect_eq(r->merges(&c, b), rm->merges(&cm, b));
        cr_expect_eq(r->merge_target(&c, b, 600), rm->merge_target(&cm, b, 600));
    }
    MatchKind k1, k2;
    size_t u1, u2;
    r->match(&c, &k1, &u1);
    rm->match(&cm, &k2, &u2);
    cr_expect(k1 == k2 && u1 == u2);
    c.stages[0].keep = 0.0f;   // the stage checks apply to maelre-exact too
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    // the kinds' own settings are checked for the methods that use them
    c = cfg_for(METHOD_PERFORMER);
    c.performer_features = 0;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "performer_features"), "%s", err);
    c = cfg_for(METHOD_NYSTROMFORMER);
    c.nystrom_landmarks = 0;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "nystrom_landmarks"), "%s", err);
    c = cfg_for(METHOD_MAELRE);
    c.maelre_coarse = ATTN_PERFORMER;
    c.performer_features = 0;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE, "performer as coarse kind: its check runs");
}

// local and bigbird: their kind in every block at every length, no merging; they take log s
// (proportional), yet MAELRE refuses them as its coarse kind (issue 9 allows efficient, linear,
// performer); their settings are checked.
Test(model_methods, local_and_bigbird_rows) {
    const Method ms[] = {METHOD_LOCAL, METHOD_BIGBIRD};
    const AttnKind ks[] = {ATTN_LOCAL, ATTN_BIGBIRD};
    char err[256];
    for (int i = 0; i < 2; i++) {
        ModelConfig c = cfg_for(ms[i]);
        const MethodRow *r = method_row(ms[i]);
        cr_assert_eq(model_config_check(&c, err, sizeof err), MB_OK, "%s", err);
        cr_expect_eq(r->kinds_used(&c), 1u << ks[i]);
        cr_expect(attn_kind(ks[i])->proportional, "%s ignores log s", attn_kind_name(ks[i]));
        for (size_t b = 0; b < c.blocks; b++) {
            cr_expect_not(r->merges(&c, b));
            for (size_t n = 1; n <= 600; n = n * 3 + 1) {
                cr_expect_eq(r->kind(&c, b, n), ks[i]);
                cr_expect_eq(r->merge_target(&c, b, n), n);
            }
        }
        ModelConfig m = cfg_for(METHOD_MAELRE);
        m.maelre_coarse = ks[i];
        cr_expect_eq(model_config_check(&m, err, sizeof err), MB_ERR_USAGE, "maelre_coarse %s accepted", attn_kind_name(ks[i]));
        cr_expect(strstr(err, "maelre_coarse"), "%s", err);
    }
    ModelConfig c = cfg_for(METHOD_LOCAL);
    cr_expect_eq(c.local_attn_window, 512u);
    c.local_attn_window = 1;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "local_attn_window"), "%s", err);
    c = cfg_for(METHOD_BIGBIRD);
    cr_expect_eq(c.bigbird_block, 64u);
    cr_expect_eq(c.bigbird_random, 3u);
    c.bigbird_block = 0;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "bigbird_block"), "%s", err);
    c = cfg_for(METHOD_BIGBIRD);
    c.bigbird_random = 0;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "bigbird_random"), "%s", err);
    // the window only matters to the method that uses the kind
    c = cfg_for(METHOD_VANILLA);
    c.local_attn_window = 0;
    c.bigbird_block = 0;
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_OK, "%s", err);
}
