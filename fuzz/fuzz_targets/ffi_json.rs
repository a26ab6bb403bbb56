//! Fuzz target: the JSON entry points of the C ABI with arbitrary request bytes, in the UTF-8
//! and UTF-16 forms, on one engine handle and without one (stage and conversion calls). Any
//! status is fine; crashes, panics escaping the boundary, leaks of the error state and non-JSON
//! last errors are not. `dirsync_stage_import` / `dirsync_stage_export` are left out: they
//! read and write the files a request names, by design.
//!
//! Run from `fuzz/` with a nightly toolchain (`CI=true` keeps build.rs from refreshing the
//! committed C header):
//! `CI=true cargo +nightly fuzz run ffi_json -- -max_total_time=300 -max_len=4096`
#![no_main]

use dirsync::ffi::*;
use libfuzzer_sys::fuzz_target;
use std::ffi::{CStr, CString, c_char};
use std::sync::OnceLock;

type Op8 =
    unsafe extern "C" fn(*const DirSyncEngine, *const c_char, *mut *mut c_char) -> DirSyncStatus;
type Op16 = unsafe extern "C" fn(*const DirSyncEngine, *const u16, *mut *mut u16) -> DirSyncStatus;
type Free8 = unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> DirSyncStatus;
type Free16 = unsafe extern "C" fn(*const u16, *mut *mut u16) -> DirSyncStatus;

const HANDLE_OPS: &[(Op8, Op16)] = &[
    (dirsync_cycle, dirsync_cycle_w),
    (dirsync_run_profile, dirsync_run_profile_w),
    (dirsync_plan, dirsync_plan_w),
    (dirsync_status, dirsync_status_w),
    (dirsync_history, dirsync_history_w),
    (dirsync_cs_objects, dirsync_cs_objects_w),
    (dirsync_mv_objects, dirsync_mv_objects_w),
    (dirsync_connectors, dirsync_connectors_w),
    (dirsync_rules, dirsync_rules_w),
    (dirsync_filter, dirsync_filter_w),
    (
        dirsync_deletion_threshold_get,
        dirsync_deletion_threshold_get_w,
    ),
    (
        dirsync_deletion_threshold_set,
        dirsync_deletion_threshold_set_w,
    ),
    (dirsync_scheduler_get, dirsync_scheduler_get_w),
    (dirsync_scheduler_set, dirsync_scheduler_set_w),
    (dirsync_writeback, dirsync_writeback_w),
    (dirsync_set_password, dirsync_set_password_w),
    (dirsync_sync_object, dirsync_sync_object_w),
    (dirsync_test_permission, dirsync_test_permission_w),
];

const FREE_OPS: &[(Free8, Free16)] = &[
    (dirsync_stage_filter, dirsync_stage_filter_w),
    (dirsync_stage_transform, dirsync_stage_transform_w),
    (dirsync_stage_plan, dirsync_stage_plan_w),
    (
        dirsync_immutable_id_from_guid,
        dirsync_immutable_id_from_guid_w,
    ),
    (
        dirsync_guid_from_immutable_id,
        dirsync_guid_from_immutable_id_w,
    ),
];

struct Handle(*mut DirSyncEngine);
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

/// One engine over an LDIF source and target in a private temporary folder.
fn engine() -> &'static Handle {
    static H: OnceLock<Handle> = OnceLock::new();
    H.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dirsync-fuzz-ffi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("src.ldif"),
            "version: 1\n\ndn: uid=a,dc=corp\nobjectClass: inetOrgPerson\nuid: a\nsn: A\nentryUUID: 00000000-0000-4000-8000-000000000001\n",
        )
        .unwrap();
        let d = dir.display().to_string().replace('\\', "\\\\");
        let config = format!(
            r#"{{"state":{{"path":"{d}/state.db"}},"connectors":[{{"name":"src","type":"ldif","settings":{{"path":"{d}/src.ldif"}}}},{{"name":"tgt","type":"ldif","settings":{{"path":"{d}/tgt.ldif"}}}}],"rules":[{{"name":"in","direction":"inbound","connector":"src","source_type":"user","target_type":"person","precedence":1,"link_type":"provision","flows":[{{"target":"uid","source":"uid"}}]}},{{"name":"out","direction":"outbound","connector":"tgt","source_type":"person","target_type":"user","precedence":1,"link_type":"provision","flows":[{{"target":"dn","expression":"\"uid=\" & [uid] & \",dc=t\""}},{{"target":"uid","source":"uid"}}]}}]}}"#
        );
        let c = CString::new(config).unwrap();
        let mut h = std::ptr::null_mut();
        let s = unsafe { dirsync_engine_open(c.as_ptr(), &mut h) };
        assert_eq!(s, DirSyncStatus::DIRSYNC_OK);
        Handle(h)
    })
}

fn check_last_error(status: DirSyncStatus) {
    let mut p = std::ptr::null_mut();
    assert_eq!(
        unsafe { dirsync_last_error(&mut p) },
        DirSyncStatus::DIRSYNC_OK
    );
    let text = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string();
    unsafe { dirsync_string_free(p) };
    assert!(
        text.starts_with(&format!("{{\"code\":{},", status as i32)) && text.ends_with('}'),
        "last error does not match the status {status:?}: {text}"
    );
    assert_ne!(
        status,
        DirSyncStatus::DIRSYNC_E_INTERNAL,
        "panic at the boundary: {text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let utf16 = sel & 0x80 != 0;
    let idx = (sel & 0x7f) as usize % (HANDLE_OPS.len() + FREE_OPS.len());
    // UTF-8 form: bytes up to the first NUL (invalid UTF-8 included).
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    let c = CString::new(&body[..end]).unwrap();
    // UTF-16 form: byte pairs up to the first 0 unit (lone surrogates included).
    let mut w: Vec<u16> = body
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0)
        .collect();
    w.push(0);
    let h = engine().0;
    let status = unsafe {
        if idx < HANDLE_OPS.len() {
            let (f8, f16) = HANDLE_OPS[idx];
            if utf16 {
                let mut out = std::ptr::null_mut();
                let s = f16(h, w.as_ptr(), &mut out);
                assert_eq!(s == DirSyncStatus::DIRSYNC_OK, !out.is_null());
                dirsync_wstring_free(out);
                s
            } else {
                let mut out = std::ptr::null_mut();
                let s = f8(h, c.as_ptr(), &mut out);
                assert_eq!(s == DirSyncStatus::DIRSYNC_OK, !out.is_null());
                dirsync_string_free(out);
                s
            }
        } else {
            let (f8, f16) = FREE_OPS[idx - HANDLE_OPS.len()];
            if utf16 {
                let mut out = std::ptr::null_mut();
                let s = f16(w.as_ptr(), &mut out);
                dirsync_wstring_free(out);
                s
            } else {
                let mut out = std::ptr::null_mut();
                let s = f8(c.as_ptr(), &mut out);
                dirsync_string_free(out);
                s
            }
        }
    };
    check_last_error(status);
});
