//! The exported `dirsync_*` functions (thin wrappers; the work is in `ops`).
//!
//! Every function that takes or returns text has a UTF-8 form and a UTF-16 `_w` form.

#![allow(clippy::missing_safety_doc)]

use super::*;
use std::ffi::{c_char, c_void};

/// The ABI (and JSON schema) version this library implements, currently 1; callers check it
/// before other calls and refuse versions they do not know.
#[unsafe(no_mangle)]
pub extern "C" fn dirsync_abi_version() -> u32 {
    DIRSYNC_ABI_VERSION
}

/// The last error on the calling thread as UTF-8 JSON `{"code","message","details"}`
/// (`code` 0 when the last call succeeded). Free `*out` with `dirsync_string_free`.
/// Does not reset the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_last_error(out: *mut *mut c_char) -> DirSyncStatus {
    if out.is_null() {
        return DirSyncStatus::DIRSYNC_E_INVALID_ARGUMENT;
    }
    let text = last_error_json();
    let r = catch_unwind(|| CString::new(text).map(CString::into_raw));
    match r {
        // SAFETY: checked non-null above.
        Ok(Ok(p)) => unsafe {
            *out = p;
            DirSyncStatus::DIRSYNC_OK
        },
        _ => DirSyncStatus::DIRSYNC_E_INTERNAL,
    }
}

/// UTF-16 form of `dirsync_last_error`. Free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_last_error_w(out: *mut *mut u16) -> DirSyncStatus {
    if out.is_null() {
        return DirSyncStatus::DIRSYNC_E_INVALID_ARGUMENT;
    }
    let text = last_error_json();
    let r = catch_unwind(|| U16CString::from_str(text).map(U16CString::into_raw));
    match r {
        // SAFETY: checked non-null above.
        Ok(Ok(p)) => unsafe {
            *out = p;
            DirSyncStatus::DIRSYNC_OK
        },
        _ => DirSyncStatus::DIRSYNC_E_INTERNAL,
    }
}

/// Frees a UTF-8 string returned by this library. Null is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from CString::into_raw in this library.
        let _ = catch_unwind(|| drop(unsafe { CString::from_raw(s) }));
    }
}

/// Frees a UTF-16 string returned by this library. Null is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_wstring_free(s: *mut u16) {
    if !s.is_null() {
        // SAFETY: `s` came from U16CString::into_raw in this library.
        let _ = catch_unwind(|| drop(unsafe { U16CString::from_raw(s) }));
    }
}

/// Opens an engine from a configuration: a TOML file path, or the configuration as JSON text
/// (starting with `{`; relative paths resolve against the current directory). Locks the state.
/// On success `*out_engine` is the handle; release it with `dirsync_engine_close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_engine_open(
    config: *const c_char,
    out_engine: *mut *mut DirSyncEngine,
) -> DirSyncStatus {
    guard(|| unsafe {
        let out = out_ptr(out_engine)?;
        open_into(str8(config, "config")?, out)
    })
}

/// UTF-16 form of `dirsync_engine_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_engine_open_w(
    config: *const u16,
    out_engine: *mut *mut DirSyncEngine,
) -> DirSyncStatus {
    guard(|| unsafe {
        let out = out_ptr(out_engine)?;
        open_into(&str16(config, "config")?, out)
    })
}

/// Closes an engine handle and releases the state lock. Null is ignored. No other call may use
/// the handle during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_engine_close(engine: *mut DirSyncEngine) -> DirSyncStatus {
    guard(|| {
        if !engine.is_null() {
            // SAFETY: the handle came from dirsync_engine_open and is closed once.
            drop(unsafe { Box::from_raw(engine) });
        }
        Ok(())
    })
}

/// Asks the running operation on this handle to stop; it returns `DIRSYNC_E_CANCELLED` at its
/// next check point. Callable from any thread while another thread runs a long call. Each long
/// call clears the request when it starts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_engine_cancel(engine: *const DirSyncEngine) -> DirSyncStatus {
    cancel(engine)
}

/// Installs (or with a null callback removes) the progress callback of this handle. Events are
/// UTF-8 JSON: `{"event":"start"|"progress"|"end",...}`; progress events carry `connector`,
/// `profile`, `processed` and `total`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_engine_set_progress(
    engine: *const DirSyncEngine,
    callback: DirSyncProgressCallback,
    user_data: *mut c_void,
) -> DirSyncStatus {
    set_cb(
        engine,
        callback.map(|f| Callback::Utf8(f, user_data as usize)),
    )
}

/// UTF-16 form of `dirsync_engine_set_progress`: the callback receives UTF-16 JSON events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_engine_set_progress_w(
    engine: *const DirSyncEngine,
    callback: DirSyncProgressCallbackW,
    user_data: *mut c_void,
) -> DirSyncStatus {
    set_cb(
        engine,
        callback.map(|f| Callback::Utf16(f, user_data as usize)),
    )
}

/// Confirms deletes above the deletion threshold for the next export (like
/// `dirsync cycle --confirm-deletes`, kept in the state until that export).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_confirm_deletes(engine: *const DirSyncEngine) -> DirSyncStatus {
    guard(|| {
        // SAFETY: handle validity is the caller's contract.
        let h = unsafe { handle(engine)? };
        ops::confirm_deletes(h)
    })
}

/// Runs a sync cycle. Request: `{"policy":"Delta"|"Initial","dry_run":false,"confirm_deletes":false,"allow_empty_import":false}`.
/// Result: `{"policy","dry_run","runs":[run records]}`. Reports progress and can be cancelled.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_cycle(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::cycle) }
}

/// UTF-16 form of `dirsync_cycle`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_cycle_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::cycle) }
}

/// Runs one run profile on one connector. Request: `{"connector":"ad","profile":"FullImport"|"DeltaImport"|"FullSync"|"DeltaSync"|"Export","dry_run":false,...}`.
/// Result: the run record. Reports progress and can be cancelled.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_run_profile(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::run_profile) }
}

/// UTF-16 form of `dirsync_run_profile`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_run_profile_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::run_profile) }
}

/// The pending exports as a plan (per object and attribute, old and new values). Request: `{}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_plan(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::plan) }
}

/// UTF-16 form of `dirsync_plan`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_plan_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::plan) }
}

/// Counts per connector and the last run. Request: `{}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_status(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::status) }
}

/// UTF-16 form of `dirsync_status`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_status_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::status) }
}

/// Run history, newest first. Request: `{"limit":20}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_history(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::history) }
}

/// UTF-16 form of `dirsync_history`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_history_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::history) }
}

/// Connector-space objects. Request: `{"connector":"ad"}` (all), with `"dn"` or `"anchor"` for one.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_cs_objects(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::cs_objects) }
}

/// UTF-16 form of `dirsync_cs_objects`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_cs_objects_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::cs_objects) }
}

/// Metaverse objects. Request: `{}` (all) or `{"id":5}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_mv_objects(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::mv_objects) }
}

/// UTF-16 form of `dirsync_mv_objects`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_mv_objects_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::mv_objects) }
}

/// The connectors in cycle order with type and counts. Request: `{}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_connectors(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::connectors) }
}

/// UTF-16 form of `dirsync_connectors`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_connectors_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::connectors) }
}

/// The configured sync rules. Request: `{}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_rules(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::rules) }
}

/// UTF-16 form of `dirsync_rules`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_rules_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::rules) }
}

/// Evaluates the scoping filters of the connector's rules for one object and says in or out and
/// which partition, container, rule and group decided. Request: `{"connector":"ad","dn":"..."}`, `"anchor"` or an inline `"object"`;
/// optional `"rule"`. Result: `{"in_scope","partition":{"in_scope","partition","container","reason"},"rules":[{"rule","direction","in_scope","group","reason"}]}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_filter(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::filter) }
}

/// UTF-16 form of `dirsync_filter`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_filter_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::filter) }
}

/// The deletion threshold in force on this handle. Request: `{}`. Result: `{"count","percent","staging_mode"}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_deletion_threshold_get(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::threshold_get) }
}

/// UTF-16 form of `dirsync_deletion_threshold_get`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_deletion_threshold_get_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::threshold_get) }
}

/// Overrides the deletion threshold for this handle (the configuration file is not rewritten).
/// Request: `{"count":500,"percent":10}` (either key optional). Result: as the get call.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_deletion_threshold_set(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::threshold_set) }
}

/// UTF-16 form of `dirsync_deletion_threshold_set`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_deletion_threshold_set_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::threshold_set) }
}

/// The effective scheduler settings (Get-ADSyncScheduler): the configuration's `[scheduler]`
/// defaults with the admin's changes. Request: `{}`. Result: `{"sync_cycle_enabled",
/// "interval_seconds","suspended","staging_mode","next_cycle_policy":"Delta"|"Initial",
/// "next_cycle_start_utc","purge_run_history_days","maintenance_enabled",
/// "full_import_interval_hours","connector_overrides":{"name":{"full_import_required",
/// "full_sync_required","full_import_interval_hours"}}}`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_scheduler_get(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::scheduler_get) }
}

/// UTF-16 form of `dirsync_scheduler_get`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_scheduler_get_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::scheduler_get) }
}

/// Changes the scheduler settings (Set-ADSyncScheduler, Set-ADSyncSchedulerConnectorOverride).
/// Request: any keys of the get result (absent keys stay as they are, `null` clears
/// `next_cycle_start_utc`), e.g. `{"suspended":true}` or
/// `{"connector_overrides":{"ad":{"full_sync_required":true}}}`; unknown keys or connectors and
/// out-of-range values are errors. Stored next to the state, so a running `dirsync serve`
/// picks it up before its next cycle. Result: the new settings, as the get call.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_scheduler_set(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::scheduler_set) }
}

/// UTF-16 form of `dirsync_scheduler_set`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_scheduler_set_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::scheduler_set) }
}

/// Runs the writeback flows (cloud to Active Directory): imports and synchronizes the cloud
/// (`graph`) connectors, checks the deletion threshold, exports to the Active Directory (`ad`)
/// connectors only. Request: `{"dry_run":false,"confirm_deletes":false,"allow_empty_import":false}`.
/// Result: `{"dry_run","runs":[run records]}`. Reports progress and can be cancelled.
/// Without a cloud and an AD connector: `DIRSYNC_E_CONFIG` (details kind `WritebackNotConfigured`).
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_writeback(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::writeback) }
}

/// UTF-16 form of `dirsync_writeback`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_writeback_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::writeback) }
}

/// Sets the Active Directory password of a user (`unicodePwd`, needs LDAPS or StartTLS; with
/// `must_change`, `pwdLastSet` = 0). Request: `{"identity":"alice@corp.example.com","password":"...","must_change":false}`
/// (`identity`: user principal name, DN in any connector space or metaverse id), or
/// `{"connector":"corp","dn":"CN=...","password":"..."}`. Result: `{"connector","dn","mv_id","must_change","run_id"}`.
/// The password is never logged, stored or put into an error. Non-AD connectors: `DIRSYNC_E_NOT_SUPPORTED`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_set_password(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::set_password) }
}

/// UTF-16 form of `dirsync_set_password`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_set_password_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::set_password) }
}

/// Synchronizes one connector-space object (Sync-ADSyncCSObject) through the real sync code
/// path in one transaction and reports every decision; rolled back (preview) unless `commit`.
/// Nothing is exported. Request: `{"connector":"ad","dn":"..."}` or `"anchor"` instead of `"dn"`,
/// optional `"commit":true`. Result: `{"committed","connector","object":{cs object},
/// "inbound_rules":[{"rule","precedence","link_type","target_type","applies","in_scope","group","reason"}],
/// "link":{"action":"join"|"project"|"stay"|"disconnect"|"delete"|"none","rule","link","mv_before","mv_after","reason"},
/// "metaverse":{"id","object_type","outcome","changes":[{"attribute","old","new","rule","connector"}],"attributes"},
/// "exports":[{"connector","dn","link","before","after","changed"}],"counters","errors"}`;
/// `before`/`after` are pending exports as in the plan (`operation` add, update, rename, delete).
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_sync_object(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::sync_object) }
}

/// UTF-16 form of `dirsync_sync_object`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_sync_object_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::sync_object) }
}

/// Checks the rights of an Active Directory connector's account (read, DirSync, create, write, password
/// reset); nothing is written. Request: `{"connector":"corp","writeback_ou":"OU=..."}` (`writeback_ou` optional).
/// Result: `{"connector","all_present","report":{"dc","checks":[{"right","present","detail"}]}}`.
/// Other connector types: `DIRSYNC_E_NOT_SUPPORTED`.
/// `request` is UTF-8 JSON; on success `*out` is UTF-8 JSON to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_test_permission(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_h8(engine, request, out, ops::test_permission) }
}

/// UTF-16 form of `dirsync_test_permission`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_test_permission_w(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_h16(engine, request, out, ops::test_permission) }
}

/// Stage call (no engine, no state): full import from a connector given inline.
/// Request: `{"connector":{"name","type","settings"},"base_dir":"."}`. Result: `{"objects":[...],"watermark"}`.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_import(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::stage_import) }
}

/// UTF-16 form of `dirsync_stage_import`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_import_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::stage_import) }
}

/// Stage call: scoping filter over objects. Request: `{"objects":[...],"scope":[{"clauses":[...]}],"object_type":"user"}`.
/// Result: `{"in":[...],"out":[...],"decisions":[{"dn","in_scope","group","reason"}]}`.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_filter(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::stage_filter) }
}

/// UTF-16 form of `dirsync_stage_filter`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_filter_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::stage_filter) }
}

/// Stage call: applies one rule (scope and flows, as in the configuration) to objects.
/// Request: `{"rule":{...},"objects":[...],"parameters":{}}`. Result: `{"objects":[...],"skipped":[{"dn","reason"}]}`.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_transform(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::stage_transform) }
}

/// UTF-16 form of `dirsync_stage_transform`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_transform_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::stage_transform) }
}

/// Stage call: compares desired objects with a target's current objects.
/// Request: `{"desired":[...],"current":[...],"delete_missing":true}`. Result: `{"changes":[export requests]}`.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_plan(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::stage_plan) }
}

/// UTF-16 form of `dirsync_stage_plan`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_plan_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::stage_plan) }
}

/// Stage call: writes export requests through a connector given inline.
/// Request: `{"connector":{...},"changes":[...],"dry_run":false}`. Result: `{"results":[...]}`.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_export(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::stage_export) }
}

/// UTF-16 form of `dirsync_stage_export`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_stage_export_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::stage_export) }
}

/// Converts a GUID (`88666888-0101-1111-bbbb-1234567890ab`) to an immutableId (base64 of the
/// little-endian GUID bytes, `iGhmiAEBERG7uxI0VniQqw==`). Input and output are plain text, not JSON.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_immutable_id_from_guid(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::immutable_id_from_guid) }
}

/// UTF-16 form of `dirsync_immutable_id_from_guid`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_immutable_id_from_guid_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::immutable_id_from_guid) }
}

/// Converts an immutableId (base64 of 16 bytes) to a GUID in lowercase hyphenated form.
/// Input and output are plain text, not JSON.
/// On success `*out` is a UTF-8 string to free with `dirsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_guid_from_immutable_id(
    input: *const c_char,
    out: *mut *mut c_char,
) -> DirSyncStatus {
    unsafe { call_s8(input, out, ops::guid_from_immutable_id) }
}

/// UTF-16 form of `dirsync_guid_from_immutable_id`; free `*out` with `dirsync_wstring_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dirsync_guid_from_immutable_id_w(
    input: *const u16,
    out: *mut *mut u16,
) -> DirSyncStatus {
    unsafe { call_s16(input, out, ops::guid_from_immutable_id) }
}
