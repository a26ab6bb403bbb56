/* Calls every dirsync_* function, error paths included. Run by tests/ffi_abi.rs (under valgrind
 * when installed) in a folder holding config.json, src.ldif and the state. Exit code 0 = pass. */
#include "dirsync.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                              \
        }                                                                            \
    } while (0)

typedef DirSyncStatus (*op8)(const DirSyncEngine *, const char *, char **);
typedef DirSyncStatus (*op16)(const DirSyncEngine *, const uint16_t *, uint16_t **);
typedef DirSyncStatus (*free8)(const char *, char **);
typedef DirSyncStatus (*free16)(const uint16_t *, uint16_t **);

/* UTF-8 -> UTF-16 (enough for the test strings: BMP and astral). Caller frees. */
static uint16_t *w(const char *s) {
    size_t n = strlen(s);
    uint16_t *out = calloc(2 * n + 1, sizeof(uint16_t));
    size_t j = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp;
        if (*p < 0x80) { cp = *p++; }
        else if ((*p & 0xE0) == 0xC0) { cp = ((p[0] & 0x1F) << 6) | (p[1] & 0x3F); p += 2; }
        else if ((*p & 0xF0) == 0xE0) { cp = ((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F); p += 3; }
        else { cp = ((p[0] & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F); p += 4; }
        if (cp >= 0x10000) { cp -= 0x10000; out[j++] = 0xD800 + (cp >> 10); out[j++] = 0xDC00 + (cp & 0x3FF); }
        else out[j++] = (uint16_t)cp;
    }
    out[j] = 0;
    return out;
}

/* UTF-16 -> ASCII-ish UTF-8 for substring checks (non-ASCII becomes '?'). Caller frees. */
static char *narrow(const uint16_t *s) {
    size_t n = 0;
    while (s[n]) n++;
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) out[i] = s[i] < 0x80 ? (char)s[i] : '?';
    out[n] = 0;
    return out;
}

static int last_code(void) {
    char *e = NULL;
    CHECK(dirsync_last_error(&e) == DIRSYNC_OK);
    int code = -1000;
    if (e) {
        const char *c = strstr(e, "\"code\":");
        if (c) code = atoi(c + 7);
        dirsync_string_free(e);
    }
    return code;
}

static void show_error(const char *what) {
    char *e = NULL;
    dirsync_last_error(&e);
    fprintf(stderr, "  %s: %s\n", what, e ? e : "(none)");
    dirsync_string_free(e);
}

/* Calls both forms; checks the status, the last error code and (on success) a substring. */
static void both(const char *name, op8 f8, op16 f16, const DirSyncEngine *e, const char *req,
                 DirSyncStatus want, const char *contains) {
    char *out = NULL;
    DirSyncStatus s = f8(e, req, &out);
    if (s != want) { fprintf(stderr, "FAIL %s: status %d, want %d\n", name, s, want); show_error(name); failures++; }
    if (want == DIRSYNC_OK) {
        CHECK(out != NULL);
        if (out && contains && !strstr(out, contains)) { fprintf(stderr, "FAIL %s: '%s' not in %.300s\n", name, contains, out); failures++; }
        CHECK(last_code() == 0);
    } else {
        CHECK(out == NULL);
        CHECK(last_code() == (int)want);
    }
    dirsync_string_free(out);
    uint16_t *wreq = w(req), *wout = NULL;
    s = f16(e, wreq, &wout);
    if (s != want) { fprintf(stderr, "FAIL %s_w: status %d, want %d\n", name, s, want); show_error(name); failures++; }
    if (want == DIRSYNC_OK) {
        CHECK(wout != NULL);
        if (wout && contains) { char *n = narrow(wout); if (!strstr(n, contains)) { fprintf(stderr, "FAIL %s_w: '%s' not in %.300s\n", name, contains, n); failures++; } free(n); }
    } else {
        CHECK(wout == NULL);
    }
    dirsync_wstring_free(wout);
    free(wreq);
}

/* The pointer and encoding error paths every request-taking handle function shares. */
static void error_paths(const char *name, op8 f8, op16 f16, const DirSyncEngine *e) {
    char *out = NULL;
    uint16_t *wout = NULL;
    static const uint16_t lone[] = {0x7B, 0xD800, 0x7D, 0};
    CHECK(f8(NULL, "{}", &out) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f8(e, NULL, &out) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f8(e, "{}", NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f8(e, "{\xff}", &out) == DIRSYNC_E_INVALID_UTF8);
    CHECK(last_code() == DIRSYNC_E_INVALID_UTF8);
    CHECK(f8(e, "{not json", &out) == DIRSYNC_E_INVALID_JSON);
    CHECK(f8(e, "{\"no_such_key\":1}", &out) == DIRSYNC_E_INVALID_JSON);
    CHECK(out == NULL);
    CHECK(f16(NULL, lone, &wout) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f16(e, NULL, &wout) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f16(e, lone, NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f16(e, lone, &wout) == DIRSYNC_E_INVALID_UTF16);
    CHECK(wout == NULL);
    (void)name;
}

static void free_both(const char *name, free8 f8, free16 f16, const char *in, DirSyncStatus want,
                      const char *expect) {
    char *out = NULL;
    DirSyncStatus s = f8(in, &out);
    if (s != want) { fprintf(stderr, "FAIL %s: status %d, want %d\n", name, s, want); show_error(name); failures++; }
    if (want == DIRSYNC_OK && expect && (!out || !strstr(out, expect))) { fprintf(stderr, "FAIL %s: '%s' not in %.300s\n", name, expect, out ? out : "(null)"); failures++; }
    dirsync_string_free(out);
    uint16_t *win = w(in), *wout = NULL;
    CHECK(f16(win, &wout) == want);
    dirsync_wstring_free(wout);
    free(win);
    CHECK(f8(NULL, &out) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f8(in, NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(f8("\xc3\x28", &out) == DIRSYNC_E_INVALID_UTF8);
    static const uint16_t lone[] = {0xDC00, 0};
    CHECK(f16(lone, &wout) == DIRSYNC_E_INVALID_UTF16);
    CHECK(f16(NULL, &wout) == DIRSYNC_E_INVALID_ARGUMENT);
}

static int events8 = 0, events16 = 0;
static void on_progress(const char *json, void *ud) {
    CHECK(ud == (void *)&events8);
    CHECK(strstr(json, "\"event\"") != NULL);
    events8++;
}
static void on_progress_w(const uint16_t *json, void *ud) {
    CHECK(ud == (void *)&events16);
    CHECK(json[0] == '{');
    events16++;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

int main(void) {
    CHECK(dirsync_abi_version() == 1);
    CHECK(dirsync_last_error(NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_last_error_w(NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(last_code() == 0);
    uint16_t *wl = NULL;
    CHECK(dirsync_last_error_w(&wl) == DIRSYNC_OK && wl && wl[0] == '{');
    dirsync_wstring_free(wl);
    dirsync_string_free(NULL);
    dirsync_wstring_free(NULL);

    char *config = read_file("config.json");
    CHECK(config != NULL);
    if (!config) return 1;

    /* open: error paths */
    DirSyncEngine *e = NULL;
    CHECK(dirsync_engine_open(NULL, &e) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_engine_open(config, NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_engine_open("\xff\xfe", &e) == DIRSYNC_E_INVALID_UTF8);
    CHECK(dirsync_engine_open("", &e) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_engine_open("{\"unknown_key\":true}", &e) == DIRSYNC_E_CONFIG);
    CHECK(dirsync_engine_open("/nonexistent/dirsync.toml", &e) == DIRSYNC_E_CONFIG);
    CHECK(e == NULL);
    static const uint16_t lone[] = {0xD800, 0};
    CHECK(dirsync_engine_open_w(lone, &e) == DIRSYNC_E_INVALID_UTF16);
    CHECK(dirsync_engine_open_w(NULL, &e) == DIRSYNC_E_INVALID_ARGUMENT);

    /* open for real (UTF-16 form), then a second open of the same state is refused */
    uint16_t *wconfig = w(config);
    CHECK(dirsync_engine_open_w(wconfig, &e) == DIRSYNC_OK);
    free(wconfig);
    if (!e) { show_error("open"); return 1; }
    DirSyncEngine *e2 = NULL;
    CHECK(dirsync_engine_open(config, &e2) == DIRSYNC_E_LOCKED);
    CHECK(e2 == NULL);
    free(config);

    /* progress and cancel */
    CHECK(dirsync_engine_set_progress(NULL, on_progress, NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_engine_set_progress(e, on_progress, &events8) == DIRSYNC_OK);
    CHECK(dirsync_engine_cancel(NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_engine_cancel(e) == DIRSYNC_OK); /* cleared when the next run starts */

    char *out = NULL;
    CHECK(dirsync_cycle(e, "{\"policy\":\"Initial\"}", &out) == DIRSYNC_OK);
    CHECK(out && strstr(out, "FullImport"));
    dirsync_string_free(out);
    out = NULL;
    CHECK(events8 >= 3);
    CHECK(dirsync_engine_set_progress_w(e, on_progress_w, &events16) == DIRSYNC_OK);
    both("cycle", dirsync_cycle, dirsync_cycle_w, e, "{\"policy\":\"Delta\",\"dry_run\":true}", DIRSYNC_OK, "\"runs\"");
    CHECK(events16 >= 3);
    CHECK(dirsync_engine_set_progress(e, NULL, NULL) == DIRSYNC_OK);
    both("cycle", dirsync_cycle, dirsync_cycle_w, e, "{\"policy\":\"Sideways\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    error_paths("cycle", dirsync_cycle, dirsync_cycle_w, e);

    both("run_profile", dirsync_run_profile, dirsync_run_profile_w, e, "{\"connector\":\"src\",\"profile\":\"FullImport\"}", DIRSYNC_OK, "FullImport");
    both("run_profile", dirsync_run_profile, dirsync_run_profile_w, e, "{\"connector\":\"nope\",\"profile\":\"FullImport\"}", DIRSYNC_E_NOT_FOUND, NULL);
    both("run_profile", dirsync_run_profile, dirsync_run_profile_w, e, "{\"connector\":\"src\",\"profile\":\"Bogus\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    error_paths("run_profile", dirsync_run_profile, dirsync_run_profile_w, e);

    both("plan", dirsync_plan, dirsync_plan_w, e, "{}", DIRSYNC_OK, "\"summary\"");
    error_paths("plan", dirsync_plan, dirsync_plan_w, e);
    both("status", dirsync_status, dirsync_status_w, e, "{}", DIRSYNC_OK, "metaverse_objects");
    error_paths("status", dirsync_status, dirsync_status_w, e);
    both("history", dirsync_history, dirsync_history_w, e, "{\"limit\":5}", DIRSYNC_OK, "\"profile\":\"FullImport\"");
    error_paths("history", dirsync_history, dirsync_history_w, e);
    both("cs_objects", dirsync_cs_objects, dirsync_cs_objects_w, e, "{\"connector\":\"tgt\"}", DIRSYNC_OK, "uid=alice,dc=t");
    both("cs_objects", dirsync_cs_objects, dirsync_cs_objects_w, e, "{\"connector\":\"src\",\"dn\":\"uid=alice,ou=People,dc=corp\"}", DIRSYNC_OK, "alice");
    both("cs_objects", dirsync_cs_objects, dirsync_cs_objects_w, e, "{\"connector\":\"nope\"}", DIRSYNC_E_NOT_FOUND, NULL);
    error_paths("cs_objects", dirsync_cs_objects, dirsync_cs_objects_w, e);
    both("mv_objects", dirsync_mv_objects, dirsync_mv_objects_w, e, "{}", DIRSYNC_OK, "person");
    both("mv_objects", dirsync_mv_objects, dirsync_mv_objects_w, e, "{\"id\":999999}", DIRSYNC_E_NOT_FOUND, NULL);
    error_paths("mv_objects", dirsync_mv_objects, dirsync_mv_objects_w, e);
    both("connectors", dirsync_connectors, dirsync_connectors_w, e, "{}", DIRSYNC_OK, "\"ldif\"");
    error_paths("connectors", dirsync_connectors, dirsync_connectors_w, e);
    both("rules", dirsync_rules, dirsync_rules_w, e, "{}", DIRSYNC_OK, "user in");
    error_paths("rules", dirsync_rules, dirsync_rules_w, e);
    both("filter", dirsync_filter, dirsync_filter_w, e, "{\"connector\":\"src\",\"dn\":\"uid=alice,ou=People,dc=corp\"}", DIRSYNC_OK, "\"in_scope\":true");
    both("filter", dirsync_filter, dirsync_filter_w, e, "{\"connector\":\"src\",\"anchor\":\"00000000-0000-4000-8000-00000000000a\"}", DIRSYNC_OK, "no partition settings");
    both("filter", dirsync_filter, dirsync_filter_w, e, "{\"connector\":\"src\",\"dn\":\"uid=carol,ou=gone,dc=corp\"}", DIRSYNC_OK, "\"in_scope\":false");
    both("filter", dirsync_filter, dirsync_filter_w, e, "{\"connector\":\"src\",\"object\":{\"dn\":\"uid=x,ou=gone,dc=corp\",\"object_type\":\"user\"}}", DIRSYNC_OK, "not satisfied");
    both("filter", dirsync_filter, dirsync_filter_w, e, "{\"connector\":\"src\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    error_paths("filter", dirsync_filter, dirsync_filter_w, e);
    both("deletion_threshold_get", dirsync_deletion_threshold_get, dirsync_deletion_threshold_get_w, e, "{}", DIRSYNC_OK, "\"count\":500");
    error_paths("deletion_threshold_get", dirsync_deletion_threshold_get, dirsync_deletion_threshold_get_w, e);
    both("deletion_threshold_set", dirsync_deletion_threshold_set, dirsync_deletion_threshold_set_w, e, "{\"count\":42}", DIRSYNC_OK, "\"count\":42");
    both("deletion_threshold_set", dirsync_deletion_threshold_set, dirsync_deletion_threshold_set_w, e, "{\"percent\":150}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    error_paths("deletion_threshold_set", dirsync_deletion_threshold_set, dirsync_deletion_threshold_set_w, e);
    /* scheduler: settings round trip through the side file next to the state */
    both("scheduler_get", dirsync_scheduler_get, dirsync_scheduler_get_w, e, "{}", DIRSYNC_OK, "\"interval_seconds\":1800");
    error_paths("scheduler_get", dirsync_scheduler_get, dirsync_scheduler_get_w, e);
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"suspended\":true,\"interval_seconds\":900}", DIRSYNC_OK, "\"suspended\":true");
    both("scheduler_get", dirsync_scheduler_get, dirsync_scheduler_get_w, e, "{}", DIRSYNC_OK, "\"interval_seconds\":900");
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"connector_overrides\":{\"tgt\":{\"full_sync_required\":true}}}", DIRSYNC_OK, "\"full_sync_required\":true");
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"next_cycle_policy\":\"Initial\",\"next_cycle_start_utc\":null}", DIRSYNC_OK, "\"next_cycle_policy\":\"Initial\"");
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"interval_seconds\":0}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"connector_overrides\":{\"n\xc3\xb6pe\":{}}}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"next_cycle_start_utc\":\"tomorrow\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"suspended\":\"yes\"}", DIRSYNC_E_INVALID_JSON, NULL);
    both("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e, "{\"suspended\":false,\"connector_overrides\":{\"tgt\":{\"full_sync_required\":false}}}", DIRSYNC_OK, "\"suspended\":false");
    error_paths("scheduler_set", dirsync_scheduler_set, dirsync_scheduler_set_w, e);

    /* writeback: this configuration has no cloud connector */
    both("writeback", dirsync_writeback, dirsync_writeback_w, e, "{}", DIRSYNC_E_CONFIG, NULL);
    both("writeback", dirsync_writeback, dirsync_writeback_w, e, "{\"dry_run\":true}", DIRSYNC_E_CONFIG, NULL);
    error_paths("writeback", dirsync_writeback, dirsync_writeback_w, e);

    /* passwords: only through AD connectors, for users linked to one */
    both("set_password", dirsync_set_password, dirsync_set_password_w, e, "{\"connector\":\"src\",\"dn\":\"uid=alice\",\"password\":\"x\"}", DIRSYNC_E_NOT_SUPPORTED, NULL);
    both("set_password", dirsync_set_password, dirsync_set_password_w, e, "{\"connector\":\"src\",\"dn\":\"not a dn\",\"password\":\"x\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("set_password", dirsync_set_password, dirsync_set_password_w, e, "{\"identity\":\"uid=alice,ou=People,dc=corp\",\"password\":\"x\",\"must_change\":true}", DIRSYNC_E_NOT_FOUND, NULL);
    both("set_password", dirsync_set_password, dirsync_set_password_w, e, "{\"identity\":\"nobody@corp.example.com\",\"password\":\"x\"}", DIRSYNC_E_NOT_FOUND, NULL);
    both("set_password", dirsync_set_password, dirsync_set_password_w, e, "{\"identity\":\"uid=alice,ou=People,dc=corp\",\"password\":\"\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("set_password", dirsync_set_password, dirsync_set_password_w, e, "{\"password\":\"x\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    error_paths("set_password", dirsync_set_password, dirsync_set_password_w, e);

    /* single-object sync: preview (nothing changes), then commit */
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\",\"dn\":\"uid=alice,ou=People,dc=corp\"}", DIRSYNC_OK, "\"action\":\"stay\"");
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\",\"anchor\":\"00000000-0000-4000-8000-00000000000c\"}", DIRSYNC_OK, "not satisfied");
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\",\"dn\":\"uid=bob,ou=People,dc=corp\",\"commit\":true}", DIRSYNC_OK, "\"committed\":true");
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\",\"dn\":\"uid=nobody,dc=corp\"}", DIRSYNC_E_NOT_FOUND, NULL);
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"nope\",\"dn\":\"uid=a,dc=corp\"}", DIRSYNC_E_NOT_FOUND, NULL);
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\",\"dn\":\"not a dn\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    both("sync_object", dirsync_sync_object, dirsync_sync_object_w, e, "{\"connector\":\"src\",\"dn\":\"uid=a,dc=corp\",\"anchor\":\"x\"}", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    error_paths("sync_object", dirsync_sync_object, dirsync_sync_object_w, e);

    both("test_permission", dirsync_test_permission, dirsync_test_permission_w, e, "{\"connector\":\"src\"}", DIRSYNC_E_NOT_SUPPORTED, NULL);
    both("test_permission", dirsync_test_permission, dirsync_test_permission_w, e, "{\"connector\":\"nope\"}", DIRSYNC_E_NOT_FOUND, NULL);
    error_paths("test_permission", dirsync_test_permission, dirsync_test_permission_w, e);
    CHECK(dirsync_scheduler_get(e, "{\"x\":1}", &out) == DIRSYNC_E_INVALID_JSON);
    CHECK(dirsync_confirm_deletes(NULL) == DIRSYNC_E_INVALID_ARGUMENT);
    CHECK(dirsync_confirm_deletes(e) == DIRSYNC_OK);

    /* stage calls */
    const char *imp = "{\"connector\":{\"name\":\"s\",\"type\":\"ldif\",\"settings\":{\"path\":\"src.ldif\"}}}";
    free_both("stage_import", dirsync_stage_import, dirsync_stage_import_w, imp, DIRSYNC_OK, "alice");
    free_both("stage_import", dirsync_stage_import, dirsync_stage_import_w, "{\"connector\":{\"name\":\"s\",\"type\":\"nope\"}}", DIRSYNC_E_CONFIG, NULL);
    free_both("stage_import", dirsync_stage_import, dirsync_stage_import_w, "{\"connector\":{}}", DIRSYNC_E_INVALID_JSON, NULL);
    const char *objs = "[{\"dn\":\"uid=a,ou=People,dc=corp\",\"object_type\":\"user\",\"attributes\":{\"uid\":[\"a\"]}},"
                       "{\"dn\":\"uid=b,ou=gone,dc=corp\",\"object_type\":\"user\",\"attributes\":{\"uid\":[\"b\"]}}]";
    char req[4096];
    snprintf(req, sizeof req, "{\"objects\":%s,\"scope\":[{\"clauses\":[{\"attribute\":\"dn\",\"operator\":\"NOTCONTAINS\",\"value\":\"ou=gone\"}]}]}", objs);
    free_both("stage_filter", dirsync_stage_filter, dirsync_stage_filter_w, req, DIRSYNC_OK, "\"group\":1");
    snprintf(req, sizeof req, "{\"objects\":%s,\"rule\":{\"name\":\"r\",\"direction\":\"outbound\",\"connector\":\"t\",\"source_type\":\"user\",\"target_type\":\"account\",\"precedence\":1,"
             "\"flows\":[{\"target\":\"dn\",\"expression\":\"\\\"cn=\\\" & [uid] & \\\",dc=t\\\"\"},{\"target\":\"login\",\"expression\":\"UCase([uid])\"}]}}", objs);
    free_both("stage_transform", dirsync_stage_transform, dirsync_stage_transform_w, req, DIRSYNC_OK, "\"B\"");
    free_both("stage_transform", dirsync_stage_transform, dirsync_stage_transform_w,
              "{\"objects\":[],\"rule\":{\"name\":\"r\",\"direction\":\"outbound\",\"connector\":\"t\",\"source_type\":\"u\",\"target_type\":\"a\",\"precedence\":1,\"flows\":[{\"target\":\"x\",\"expression\":\"UCase(\"}]}}",
              DIRSYNC_E_CONFIG, NULL);
    free_both("stage_plan", dirsync_stage_plan, dirsync_stage_plan_w,
              "{\"desired\":[{\"dn\":\"cn=a,dc=t\",\"object_type\":\"account\",\"attributes\":{\"login\":[\"A\"]}}],"
              "\"current\":[{\"dn\":\"cn=z,dc=t\",\"object_type\":\"account\",\"anchor\":\"1\"}]}",
              DIRSYNC_OK, "\"operation\":\"delete\"");
    free_both("stage_export", dirsync_stage_export, dirsync_stage_export_w,
              "{\"connector\":{\"name\":\"o\",\"type\":\"ldif\",\"settings\":{\"path\":\"stage-out.ldif\"}},\"changes\":[{\"id\":1,\"object_type\":\"account\",\"anchor\":null,\"dn\":\"cn=a,dc=t\",\"operation\":\"add\",\"attributes\":{\"objectClass\":[\"account\"],\"uid\":[\"a\"]}}]}",
              DIRSYNC_OK, "\"results\"");
    free_both("immutable_id_from_guid", dirsync_immutable_id_from_guid, dirsync_immutable_id_from_guid_w,
              "88666888-0101-1111-bbbb-1234567890ab", DIRSYNC_OK, "iGhmiAEBERG7uxI0VniQqw==");
    free_both("immutable_id_from_guid", dirsync_immutable_id_from_guid, dirsync_immutable_id_from_guid_w, "not-a-guid", DIRSYNC_E_INVALID_ARGUMENT, NULL);
    free_both("guid_from_immutable_id", dirsync_guid_from_immutable_id, dirsync_guid_from_immutable_id_w,
              "iGhmiAEBERG7uxI0VniQqw==", DIRSYNC_OK, "88666888-0101-1111-bbbb-1234567890ab");
    free_both("guid_from_immutable_id", dirsync_guid_from_immutable_id, dirsync_guid_from_immutable_id_w, "AAAA", DIRSYNC_E_INVALID_ARGUMENT, NULL);

    /* an AD connector whose DC does not answer: permission check and password set fail cleanly */
    DirSyncEngine *ad = NULL;
    CHECK(dirsync_engine_open("{\"state\":{\"path\":\"ad-state.db\"},\"connectors\":[{\"name\":\"corp\",\"type\":\"ad\","
                              "\"settings\":{\"connection\":{\"url\":\"ldap://127.0.0.1:1\",\"connect_attempts\":1}}}]}", &ad) == DIRSYNC_OK);
    if (ad) {
        both("test_permission", dirsync_test_permission, dirsync_test_permission_w, ad, "{\"connector\":\"corp\"}", DIRSYNC_E_CONNECTION, NULL);
        /* not in the connector space (nothing imported): the user cannot be resolved */
        both("set_password", dirsync_set_password, dirsync_set_password_w, ad, "{\"connector\":\"corp\",\"dn\":\"CN=a,DC=corp\",\"password\":\"P\u00e4ss-1\"}", DIRSYNC_E_NOT_FOUND, NULL);
        /* plain LDAP: writeback has no cloud connector either */
        both("writeback", dirsync_writeback, dirsync_writeback_w, ad, "{}", DIRSYNC_E_CONFIG, NULL);
        CHECK(dirsync_engine_close(ad) == DIRSYNC_OK);
    } else {
        show_error("open ad");
    }

    CHECK(dirsync_engine_close(NULL) == DIRSYNC_OK);
    CHECK(dirsync_engine_close(e) == DIRSYNC_OK);
    /* the lock is released: the state opens again */
    config = read_file("config.json");
    CHECK(dirsync_engine_open(config, &e2) == DIRSYNC_OK);
    CHECK(dirsync_engine_close(e2) == DIRSYNC_OK);
    free(config);

    if (failures) { fprintf(stderr, "%d failure(s)\n", failures); return 1; }
    printf("abi_test: all checks passed\n");
    return 0;
}
