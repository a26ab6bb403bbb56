//! The C ABI: `dirsync_*` functions over an opaque engine handle, JSON requests and results.
//!
//! Conventions (see `include/dirsync.h`, generated from this module by cbindgen):
//! - every function returns a [`DirSyncStatus`] (`DIRSYNC_OK` = 0, negative error kinds); the
//!   detail of the last failure on the calling thread is `{"code","message","details"}` from
//!   [`dirsync_last_error`];
//! - every string-taking function has a UTF-8 form and a UTF-16 `_w` form (for .NET `LPWStr`);
//!   strings the library returns are freed with [`dirsync_string_free`] / [`dirsync_wstring_free`];
//! - requests are JSON objects that reject unknown keys; results are JSON documents
//!   (schema version [`DIRSYNC_ABI_VERSION`]);
//! - panics never cross the boundary; null pointers and bad encodings are errors;
//! - a handle may be used from any thread: calls on one handle are serialized by a lock, and
//!   [`dirsync_engine_cancel`] works while a run holds it.

mod exports;
pub(crate) mod ops;

pub use exports::*;

use crate::connectors::ConnectorError;
use crate::engine::{Engine, EngineError};
use crate::store::StoreError;
use serde_json::{Value as Json, json};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use widestring::{U16CStr, U16CString};

/// The ABI (and JSON schema) version; bumped on incompatible changes.
pub const DIRSYNC_ABI_VERSION: u32 = 1;

/// Status codes returned by every `dirsync_*` function: 0 is success, negative values are
/// error kinds. Details of the last error on the calling thread: `dirsync_last_error`.
/// cbindgen:prefix-with-name=false
/// cbindgen:rename-all=None
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirSyncStatus {
    /// Success.
    DIRSYNC_OK = 0,
    /// A required pointer was null or an argument is not acceptable.
    DIRSYNC_E_INVALID_ARGUMENT = -1,
    /// A `char*` argument is not valid UTF-8.
    DIRSYNC_E_INVALID_UTF8 = -2,
    /// A `uint16_t*` argument is not valid UTF-16 (unpaired surrogate).
    DIRSYNC_E_INVALID_UTF16 = -3,
    /// A request is not valid JSON or has unknown or mistyped keys.
    DIRSYNC_E_INVALID_JSON = -4,
    /// The configuration is invalid (details name file, line and key).
    DIRSYNC_E_CONFIG = -5,
    /// The state database failed.
    DIRSYNC_E_STATE = -6,
    /// The state is in use by another engine.
    DIRSYNC_E_LOCKED = -7,
    /// A connected directory could not be reached.
    DIRSYNC_E_CONNECTION = -8,
    /// A connected directory rejected the credentials.
    DIRSYNC_E_AUTHENTICATION = -9,
    /// A connected directory throttled and the retry budget ran out.
    DIRSYNC_E_THROTTLED = -10,
    /// Any other connector failure (bad input data, protocol error, I/O).
    DIRSYNC_E_CONNECTOR = -11,
    /// An import returned nothing where the connector space holds objects.
    DIRSYNC_E_EMPTY_IMPORT = -12,
    /// The export would delete more objects than the deletion threshold allows.
    DIRSYNC_E_THRESHOLD_EXCEEDED = -13,
    /// Unknown connector, run profile or object.
    DIRSYNC_E_NOT_FOUND = -14,
    /// The operation was cancelled (`dirsync_engine_cancel`).
    DIRSYNC_E_CANCELLED = -15,
    /// The operation is not supported for this connector type (or by this build).
    DIRSYNC_E_NOT_SUPPORTED = -16,
    /// An internal error (a caught panic): a bug in dirsync.
    DIRSYNC_E_INTERNAL = -99,
}

use DirSyncStatus as Status;

/// An error on its way to the caller.
#[derive(Debug)]
pub(crate) struct FfiError {
    code: Status,
    message: String,
    details: Json,
}

impl FfiError {
    pub(crate) fn new(code: Status, message: impl Into<String>) -> FfiError {
        FfiError {
            code,
            message: message.into(),
            details: Json::Null,
        }
    }
    pub(crate) fn with_details(mut self, d: Json) -> FfiError {
        self.details = d;
        self
    }
    pub(crate) fn invalid_argument(m: impl Into<String>) -> FfiError {
        FfiError::new(Status::DIRSYNC_E_INVALID_ARGUMENT, m)
    }
    pub(crate) fn internal(m: impl Into<String>) -> FfiError {
        FfiError::new(Status::DIRSYNC_E_INTERNAL, m)
    }
    pub(crate) fn connector(name: &str, e: ConnectorError) -> FfiError {
        let (code, kind) = connector_code(&e);
        FfiError::new(code, format!("connector '{name}': {e}"))
            .with_details(json!({"kind": kind, "connector": name}))
    }
}

fn connector_code(e: &ConnectorError) -> (Status, &'static str) {
    match e {
        ConnectorError::Config(_) => (Status::DIRSYNC_E_CONFIG, "Config"),
        ConnectorError::Input { .. } => (Status::DIRSYNC_E_CONNECTOR, "Input"),
        ConnectorError::Connection { .. } => (Status::DIRSYNC_E_CONNECTION, "Connection"),
        ConnectorError::Authentication(_) => (Status::DIRSYNC_E_AUTHENTICATION, "Authentication"),
        ConnectorError::Throttled { .. } => (Status::DIRSYNC_E_THROTTLED, "Throttled"),
        ConnectorError::WatermarkExpired(_) => (Status::DIRSYNC_E_CONNECTOR, "WatermarkExpired"),
        ConnectorError::Cancelled => (Status::DIRSYNC_E_CANCELLED, "Cancelled"),
        ConnectorError::Unsupported(_) => (Status::DIRSYNC_E_NOT_SUPPORTED, "Unsupported"),
        ConnectorError::Io { .. } => (Status::DIRSYNC_E_CONNECTOR, "Io"),
        ConnectorError::Protocol(_) => (Status::DIRSYNC_E_CONNECTOR, "Protocol"),
    }
}

/// Status and details of a writeback or password failure (never the password).
fn writeback_code(e: &crate::engine::WritebackError) -> (Status, serde_json::Value) {
    use crate::engine::WritebackError as W;
    match e {
        W::NotConfigured { cloud, ad } => (
            Status::DIRSYNC_E_CONFIG,
            json!({"kind": "WritebackNotConfigured", "cloud": cloud, "ad": ad}),
        ),
        W::IdentityNotFound(_) => (
            Status::DIRSYNC_E_NOT_FOUND,
            json!({"kind": "IdentityNotFound"}),
        ),
        W::AmbiguousIdentity { matches, .. } => (
            Status::DIRSYNC_E_INVALID_ARGUMENT,
            json!({"kind": "AmbiguousIdentity", "matches": matches}),
        ),
        W::NotAdLinked { .. } => (Status::DIRSYNC_E_NOT_FOUND, json!({"kind": "NotAdLinked"})),
        W::SeveralAdLinks { connectors, .. } => (
            Status::DIRSYNC_E_INVALID_ARGUMENT,
            json!({"kind": "SeveralAdLinks", "connectors": connectors}),
        ),
        W::LdapsRequired { connector } => (
            Status::DIRSYNC_E_CONFIG,
            json!({"kind": "LdapsRequired", "connector": connector}),
        ),
        W::EmptyPassword => (
            Status::DIRSYNC_E_INVALID_ARGUMENT,
            json!({"kind": "EmptyPassword"}),
        ),
        W::PasswordRejected {
            connector,
            dn,
            kind,
            ..
        } => (
            match kind {
                crate::connectors::ExportErrorKind::ObjectNotFound => Status::DIRSYNC_E_NOT_FOUND,
                crate::connectors::ExportErrorKind::Transient => Status::DIRSYNC_E_CONNECTION,
                _ => Status::DIRSYNC_E_CONNECTOR,
            },
            json!({"kind": "PasswordRejected", "connector": connector, "dn": dn, "export_error": kind}),
        ),
    }
}

impl From<crate::config::ConfigError> for FfiError {
    fn from(e: crate::config::ConfigError) -> FfiError {
        let details = FfiError::config_details(&e);
        FfiError::new(Status::DIRSYNC_E_CONFIG, e.to_string()).with_details(details)
    }
}

impl From<EngineError> for FfiError {
    fn from(e: EngineError) -> FfiError {
        let message = e.to_string();
        let (code, details) = match &e {
            EngineError::Config(c) => (Status::DIRSYNC_E_CONFIG, FfiError::config_details(c)),
            EngineError::Store(StoreError::Locked { path, lock }) => (
                Status::DIRSYNC_E_LOCKED,
                json!({"kind": "Locked", "path": path, "lock": lock}),
            ),
            EngineError::Store(_) => (Status::DIRSYNC_E_STATE, json!({"kind": "Store"})),
            EngineError::Connector { connector, source } => {
                let (code, kind) = connector_code(source);
                (code, json!({"kind": kind, "connector": connector}))
            }
            EngineError::EmptyImport {
                connector,
                existing,
            } => (
                Status::DIRSYNC_E_EMPTY_IMPORT,
                json!({"kind": "EmptyImport", "connector": connector, "existing": existing}),
            ),
            EngineError::DeletionThreshold {
                connector,
                deletes,
                total,
                threshold,
            } => (
                Status::DIRSYNC_E_THRESHOLD_EXCEEDED,
                json!({"kind": "DeletionThreshold", "connector": connector, "deletes": deletes,
                       "total": total, "threshold": threshold}),
            ),
            EngineError::NotFound(_) => (Status::DIRSYNC_E_NOT_FOUND, json!({"kind": "NotFound"})),
            EngineError::Cancelled => (Status::DIRSYNC_E_CANCELLED, json!({"kind": "Cancelled"})),
            EngineError::Writeback(w) => writeback_code(w),
        };
        FfiError::new(code, message).with_details(details)
    }
}

impl FfiError {
    fn config_details(c: &crate::config::ConfigError) -> Json {
        use crate::config::ConfigError as C;
        match c {
            C::Read { file, .. } => json!({"kind": "Read", "file": file}),
            C::Syntax { file, line, .. } => json!({"kind": "Syntax", "file": file, "line": line}),
            C::Invalid {
                file, line, key, ..
            } => {
                json!({"kind": "Invalid", "file": file, "line": line, "key": key})
            }
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<FfiError>> = const { RefCell::new(None) };
}

fn last_error_json() -> String {
    LAST_ERROR.with(|l| {
        let l = l.borrow();
        let v = match &*l {
            Some(e) => json!({"code": e.code as i32, "message": e.message, "details": e.details}),
            None => json!({"code": 0, "message": "", "details": null}),
        };
        v.to_string()
    })
}

/// Runs `f` at the boundary: clears the thread's last error, catches panics, records errors.
fn guard(f: impl FnOnce() -> Result<(), FfiError>) -> DirSyncStatus {
    LAST_ERROR.with(|l| *l.borrow_mut() = None);
    let err = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return Status::DIRSYNC_OK,
        Ok(Err(e)) => e,
        Err(p) => {
            let m = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            FfiError::internal(format!("internal error (panic): {m}"))
        }
    };
    let code = err.code;
    LAST_ERROR.with(|l| *l.borrow_mut() = Some(err));
    code
}

/// A progress callback and its user data (kept as an address so the closure is Send).
#[derive(Clone, Copy)]
enum Callback {
    Utf8(unsafe extern "C" fn(*const c_char, *mut c_void), usize),
    Utf16(unsafe extern "C" fn(*const u16, *mut c_void), usize),
}

/// The opaque engine handle (`DirSyncEngine*` in C). Safe to share between threads: calls are
/// serialized by a lock inside, cancellation and progress settings bypass it.
pub struct DirSyncEngine {
    engine: Mutex<Engine>,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<Option<Callback>>>,
}

impl DirSyncEngine {
    fn new(mut engine: Engine) -> DirSyncEngine {
        let progress: Arc<Mutex<Option<Callback>>> = Arc::new(Mutex::new(None));
        let p2 = progress.clone();
        engine.set_progress(Some(Arc::new(move |ev: &crate::engine::Progress| {
            let mut v = serde_json::to_value(ev).unwrap_or(Json::Null);
            if let Json::Object(m) = &mut v {
                m.insert("event".into(), json!("progress"));
            }
            deliver(&p2, &v);
        })));
        DirSyncEngine {
            cancel: engine.cancel_flag(),
            engine: Mutex::new(engine),
            progress,
        }
    }

    /// Sends an event to the progress callback, if any.
    pub(crate) fn emit(&self, v: Json) {
        deliver(&self.progress, &v);
    }
}

fn deliver(p: &Mutex<Option<Callback>>, v: &Json) {
    let cb = *p.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cb) = cb else { return };
    let text = v.to_string();
    match cb {
        Callback::Utf8(f, ud) => {
            if let Ok(c) = CString::new(text) {
                // SAFETY: the caller registered `f` for exactly this signature.
                unsafe { f(c.as_ptr(), ud as *mut c_void) }
            }
        }
        Callback::Utf16(f, ud) => {
            if let Ok(w) = U16CString::from_str(&text) {
                // SAFETY: as above.
                unsafe { f(w.as_ptr(), ud as *mut c_void) }
            }
        }
    }
}

/// Progress callback receiving one UTF-8 JSON event (`{"event":"start"|"progress"|"end",...}`)
/// and the caller's user data. The string is valid only during the call. It runs on the thread
/// that made the long call, while that call holds the handle: from the callback, call only
/// `dirsync_engine_cancel` or `dirsync_engine_set_progress` on the same handle.
pub type DirSyncProgressCallback =
    Option<unsafe extern "C" fn(event_json: *const c_char, user_data: *mut c_void)>;

/// UTF-16 form of `DirSyncProgressCallback`.
pub type DirSyncProgressCallbackW =
    Option<unsafe extern "C" fn(event_json: *const u16, user_data: *mut c_void)>;

// ---- pointer and string helpers ----

unsafe fn handle<'a>(p: *const DirSyncEngine) -> Result<&'a DirSyncEngine, FfiError> {
    if p.is_null() {
        return Err(FfiError::invalid_argument("engine handle is null"));
    }
    // SAFETY: the caller passes a handle from dirsync_engine_open that it has not closed.
    Ok(unsafe { &*p })
}

unsafe fn str8<'a>(p: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::invalid_argument(format!("{name} is null")));
    }
    // SAFETY: the caller passes a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|e| {
        FfiError::new(
            Status::DIRSYNC_E_INVALID_UTF8,
            format!("{name} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

unsafe fn str16(p: *const u16, name: &str) -> Result<String, FfiError> {
    if p.is_null() {
        return Err(FfiError::invalid_argument(format!("{name} is null")));
    }
    // SAFETY: the caller passes a NUL-terminated UTF-16 string.
    unsafe { U16CStr::from_ptr_str(p) }
        .to_string()
        .map_err(|e| {
            FfiError::new(
                Status::DIRSYNC_E_INVALID_UTF16,
                format!("{name} is not valid UTF-16: {e}"),
            )
        })
}

unsafe fn out_ptr<'a, T>(p: *mut *mut T) -> Result<&'a mut *mut T, FfiError> {
    if p.is_null() {
        return Err(FfiError::invalid_argument("output pointer is null"));
    }
    // SAFETY: non-null and, by contract, writable.
    let r = unsafe { &mut *p };
    *r = std::ptr::null_mut();
    Ok(r)
}

fn put8(out: &mut *mut c_char, s: String) -> Result<(), FfiError> {
    let c = CString::new(s).map_err(|_| FfiError::internal("result contains NUL"))?;
    *out = c.into_raw();
    Ok(())
}

fn put16(out: &mut *mut u16, s: String) -> Result<(), FfiError> {
    let w = U16CString::from_str(&s).map_err(|_| FfiError::internal("result contains NUL"))?;
    *out = w.into_raw();
    Ok(())
}

type HandleOp = fn(&DirSyncEngine, &str) -> ops::OpResult;
type FreeOp = fn(&str) -> ops::OpResult;

unsafe fn call_h8(
    engine: *const DirSyncEngine,
    request: *const c_char,
    out: *mut *mut c_char,
    f: HandleOp,
) -> DirSyncStatus {
    guard(|| unsafe {
        let out = out_ptr(out)?;
        let h = handle(engine)?;
        let r = f(h, str8(request, "request")?)?;
        put8(out, r)
    })
}

unsafe fn call_h16(
    engine: *const DirSyncEngine,
    request: *const u16,
    out: *mut *mut u16,
    f: HandleOp,
) -> DirSyncStatus {
    guard(|| unsafe {
        let out = out_ptr(out)?;
        let h = handle(engine)?;
        let r = f(h, &str16(request, "request")?)?;
        put16(out, r)
    })
}

unsafe fn call_s8(input: *const c_char, out: *mut *mut c_char, f: FreeOp) -> DirSyncStatus {
    guard(|| unsafe {
        let out = out_ptr(out)?;
        let r = f(str8(input, "input")?)?;
        put8(out, r)
    })
}

unsafe fn call_s16(input: *const u16, out: *mut *mut u16, f: FreeOp) -> DirSyncStatus {
    guard(|| unsafe {
        let out = out_ptr(out)?;
        let r = f(&str16(input, "input")?)?;
        put16(out, r)
    })
}

fn open_into(config: &str, out: &mut *mut DirSyncEngine) -> Result<(), FfiError> {
    let e = ops::open(config)?;
    *out = Box::into_raw(Box::new(DirSyncEngine::new(e)));
    Ok(())
}

fn set_cb(engine: *const DirSyncEngine, cb: Option<Callback>) -> DirSyncStatus {
    guard(|| {
        // SAFETY: handle validity is the caller's contract.
        let h = unsafe { handle(engine)? };
        *h.progress.lock().unwrap_or_else(|e| e.into_inner()) = cb;
        Ok(())
    })
}

fn cancel(engine: *const DirSyncEngine) -> DirSyncStatus {
    guard(|| {
        // SAFETY: handle validity is the caller's contract.
        let h = unsafe { handle(engine)? };
        h.cancel.store(true, Ordering::SeqCst);
        Ok(())
    })
}

/// Handles are shared between threads by the callers: this must hold.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<DirSyncEngine>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_id_round_trip() {
        let id = ops::immutable_id_from_guid("88666888-0101-1111-bbbb-1234567890ab").unwrap();
        assert_eq!(id, "iGhmiAEBERG7uxI0VniQqw==");
        assert_eq!(
            ops::guid_from_immutable_id(&id).unwrap(),
            "88666888-0101-1111-bbbb-1234567890ab"
        );
        assert!(ops::guid_from_immutable_id("AAAA").is_err());
    }

    #[test]
    fn panics_become_internal_errors() {
        let s = guard(|| panic!("boom"));
        assert_eq!(s, Status::DIRSYNC_E_INTERNAL);
        assert!(last_error_json().contains("boom"));
        assert_eq!(guard(|| Ok(())), Status::DIRSYNC_OK);
        assert!(last_error_json().contains("\"code\":0"));
    }
}
