"""Calls libdirsync through ctypes the way existing automation does.

Usage: python3 test_ctypes.py /path/to/libdirsync.so (run in a folder holding config.json and
src.ldif). Covers the UTF-8 and UTF-16 forms, concurrent calls on one handle from several
threads, cancellation from another thread and the progress callback.
"""

import ctypes
import json
import sys
import threading
import time

lib = ctypes.CDLL(sys.argv[1])
OK, E_INVALID_ARGUMENT, E_INVALID_JSON, E_CONFIG, E_CANCELLED, E_INVALID_UTF16, E_NOT_FOUND = 0, -1, -4, -5, -15, -3, -14

c_wp = ctypes.POINTER(ctypes.c_uint16)
CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
CBW = ctypes.CFUNCTYPE(None, c_wp, ctypes.c_void_p)

lib.dirsync_abi_version.restype = ctypes.c_uint32
lib.dirsync_engine_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
lib.dirsync_engine_open_w.argtypes = [c_wp, ctypes.POINTER(ctypes.c_void_p)]
lib.dirsync_engine_close.argtypes = [ctypes.c_void_p]
lib.dirsync_engine_cancel.argtypes = [ctypes.c_void_p]
lib.dirsync_engine_set_progress.argtypes = [ctypes.c_void_p, CB, ctypes.c_void_p]
lib.dirsync_engine_set_progress_w.argtypes = [ctypes.c_void_p, CBW, ctypes.c_void_p]
lib.dirsync_string_free.argtypes = [ctypes.c_void_p]
lib.dirsync_wstring_free.argtypes = [ctypes.c_void_p]
lib.dirsync_last_error.argtypes = [ctypes.POINTER(ctypes.c_void_p)]


def wstr(s):
    """NUL-terminated UTF-16 buffer (surrogate pairs for astral characters)."""
    data = s.encode("utf-16-le", "surrogatepass")
    units = [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)] + [0]
    return (ctypes.c_uint16 * len(units))(*units)


def from_w(ptr):
    units = []
    i = 0
    while ptr[i]:
        units.append(ptr[i])
        i += 1
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le")


def last_error():
    p = ctypes.c_void_p()
    assert lib.dirsync_last_error(ctypes.byref(p)) == OK
    text = ctypes.string_at(p.value).decode()
    lib.dirsync_string_free(p)
    return json.loads(text)


def call(name, handle, request):
    f = getattr(lib, "dirsync_" + name)
    f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    out = ctypes.c_void_p()
    rc = f(handle, json.dumps(request).encode(), ctypes.byref(out))
    if rc != OK:
        return rc, last_error()
    text = ctypes.string_at(out.value).decode()
    lib.dirsync_string_free(out)
    return rc, json.loads(text)


def call_w(name, handle, request_text):
    f = getattr(lib, "dirsync_" + name + "_w")
    f.argtypes = [ctypes.c_void_p, c_wp, ctypes.POINTER(c_wp)]
    out = c_wp()
    rc = f(handle, wstr(request_text), ctypes.byref(out))
    if rc != OK:
        return rc, last_error()
    text = from_w(out)
    lib.dirsync_wstring_free(ctypes.cast(out, ctypes.c_void_p))
    return rc, json.loads(text)


assert lib.dirsync_abi_version() == 1
config = open("config.json", encoding="utf-8").read()
h = ctypes.c_void_p()
rc = lib.dirsync_engine_open_w(wstr(config), ctypes.byref(h))
assert rc == OK, last_error()

events = []
cb = CB(lambda ev, ud: events.append(json.loads(ev.decode())))
assert lib.dirsync_engine_set_progress(h, cb, None) == OK
rc, res = call("cycle", h, {"policy": "Initial"})
assert rc == OK, res
assert any(e["event"] == "progress" for e in events), events
assert events[0]["event"] == "start" and events[-1]["event"] == "end"

# UTF-16: non-ASCII values come back intact through the _w forms.
rc, objs = call_w("cs_objects", h, '{"connector":"tgt","dn":"uid=alice,dc=t"}')
assert rc == OK, objs
attrs = objs[0].get("unconfirmed") or objs[0]["attributes"]
assert attrs["sn"] == ["Müller"] and attrs["cn"] == ["Jürgen Müller"], objs
f = lib.dirsync_immutable_id_from_guid_w
f.argtypes = [c_wp, ctypes.POINTER(c_wp)]
out = c_wp()
assert f(wstr("88666888-0101-1111-bbbb-1234567890ab"), ctypes.byref(out)) == OK
assert from_w(out) == "iGhmiAEBERG7uxI0VniQqw=="
lib.dirsync_wstring_free(ctypes.cast(out, ctypes.c_void_p))
rc, err = call_w("filter", h, '{"connector":"src","object":{"dn":"cn=Zoë 𝄞,dc=corp","object_type":"user"}}')
assert rc == OK and err["in_scope"] is True, err
bad = (ctypes.c_uint16 * 3)(0x7B, 0xDC00, 0)
out = c_wp()
lib.dirsync_plan_w.argtypes = [ctypes.c_void_p, c_wp, ctypes.POINTER(c_wp)]
assert lib.dirsync_plan_w(h, bad, ctypes.byref(out)) == E_INVALID_UTF16
assert last_error()["code"] == E_INVALID_UTF16

# Unknown keys are errors with JSON details.
rc, err = call("history", h, {"limit": 3, "bogus": 1})
assert rc == E_INVALID_JSON and "bogus" in err["message"], err

# Scheduler settings round trip (stored next to the state), errors for bad values.
rc, res = call("scheduler_get", h, {})
assert rc == OK and res["interval_seconds"] == 1800 and res["suspended"] is False, res
rc, res = call("scheduler_set", h, {"suspended": True, "next_cycle_policy": "Initial"})
assert rc == OK and res["suspended"] is True and res["next_cycle_policy"] == "Initial", res
rc, res = call_w("scheduler_get", h, "{}")
assert rc == OK and res["suspended"] is True, res
rc, err = call("scheduler_set", h, {"purge_run_history_days": 0})
assert rc == E_INVALID_ARGUMENT and err["details"]["key"] == "purge_run_history_days", err
rc, res = call("scheduler_set", h, {"suspended": False, "next_cycle_policy": "Delta"})
assert rc == OK and res["suspended"] is False, res

# UTF-16 with non-ASCII and astral characters in a scheduler request: a connector override
# on a second engine whose connector has such a name.
intl = json.dumps({"state": {"path": "state-intl.db"},
                   "connectors": [{"name": "Zürich 𝄞", "type": "ldif", "settings": {"path": "src.ldif"}}]})
h2 = ctypes.c_void_p()
assert lib.dirsync_engine_open_w(wstr(intl), ctypes.byref(h2)) == OK, last_error()
rc, res = call_w("scheduler_set", h2, '{"connector_overrides":{"Zürich 𝄞":{"full_import_required":true,"full_import_interval_hours":24}}}')
assert rc == OK and res["connector_overrides"]["Zürich 𝄞"]["full_import_required"] is True, res
rc, res = call_w("scheduler_get", h2, "{}")
assert rc == OK and res["connector_overrides"]["Zürich 𝄞"]["full_import_interval_hours"] == 24, res
rc, err = call_w("scheduler_set", h2, '{"connector_overrides":{"Zürich":{"full_sync_required":true}}}')
assert rc == E_INVALID_ARGUMENT and "Zürich" in err["message"], err
assert lib.dirsync_engine_close(h2) == OK

# Writeback needs a cloud and an AD connector: this configuration has neither.
rc, err = call("writeback", h, {"dry_run": True})
assert rc == E_CONFIG and err["details"]["kind"] == "WritebackNotConfigured", err

# Single-object sync: alice's sn changes in the source; the preview shows the metaverse change
# and the target export and keeps nothing; the commit makes the export pending.
with open("src.ldif", encoding="utf-8") as f:
    source = f.read()
with open("src.ldif", "w", encoding="utf-8") as f:
    f.write(source.replace("sn:: TcO8bGxlcg==", "sn: Müller-Lüdenscheidt"))
rc, res = call("run_profile", h, {"connector": "src", "profile": "FullImport"})
assert rc == OK and res["counters"]["updates"] == 1, res
rc, plan_before = call("plan", h, {})
assert rc == OK
request = '{"connector":"src","dn":"uid=alice,ou=People,dc=corp"}'
rc, rep = call_w("sync_object", h, request)
assert rc == OK and rep["committed"] is False and rep["link"]["action"] == "stay", rep
sn = [c for c in rep["metaverse"]["changes"] if c["attribute"] == "sn"]
assert len(sn) == 1 and sn[0]["rule"] == "user in", rep["metaverse"]
assert json.dumps(sn[0]["new"], ensure_ascii=False).find("Müller-Lüdenscheidt") > 0, sn
export = [x for x in rep["exports"] if x["connector"] == "tgt"][0]
assert export["changed"] and export["after"]["operation"] == "update", export
assert export["after"]["attributes"][0]["old"] == ["Müller"], export
rc, plan_now = call("plan", h, {})
assert plan_now == plan_before, (plan_now, plan_before)
rc, rep = call("sync_object", h, {"connector": "src", "dn": "uid=alice,ou=People,dc=corp", "commit": True})
assert rc == OK and rep["committed"] is True, rep
rc, plan_now = call("plan", h, {})
assert any(o["dn"] == "uid=alice,dc=t" and o["operation"] == "update" for o in plan_now["objects"]), plan_now
rc, err = call("sync_object", h, {"connector": "src", "dn": "uid=nobody,dc=corp"})
assert rc == E_NOT_FOUND, err

# Concurrent calls on one handle from several threads.
errors = []


def worker(i):
    try:
        for _ in range(5):
            for name, req in [("status", {}), ("plan", {}), ("history", {"limit": 2}),
                              ("mv_objects", {}), ("run_profile", {"connector": "src", "profile": "DeltaSync"}),
                              ("sync_object", {"connector": "src", "dn": "uid=bob,ou=People,dc=corp"}),
                              ("sync_object", {"connector": "src", "dn": "uid=bob,ou=People,dc=corp", "commit": True}),
                              ("scheduler_get", {}), ("scheduler_set", {"interval_seconds": 1800 + i})]:
                rc, res = call(name, h, req)
                if rc != OK:
                    errors.append((name, res))
    except Exception as e:  # noqa: BLE001
        errors.append(repr(e))


threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors

# Cancel from another thread: the progress callback holds the run until the cancel is in.
started = threading.Event()
cancelled = threading.Event()


def slow(ev, ud):
    started.set()
    cancelled.wait(5)


cb2 = CB(slow)
assert lib.dirsync_engine_set_progress(h, cb2, None) == OK


def canceller():
    started.wait(5)
    assert lib.dirsync_engine_cancel(h) == OK
    cancelled.set()


t = threading.Thread(target=canceller)
t.start()
rc, err = call("cycle", h, {"policy": "Initial"})
t.join()
assert rc == E_CANCELLED, (rc, err)
assert err["code"] == E_CANCELLED

# UTF-16 progress callback; the next run is not cancelled.
wevents = []
cbw = CBW(lambda ev, ud: wevents.append(from_w(ev)))
assert lib.dirsync_engine_set_progress_w(h, cbw, None) == OK
rc, res = call_w("cycle", h, '{"policy":"Delta"}')
assert rc == OK, res
assert wevents and json.loads(wevents[0])["event"] == "start"

assert lib.dirsync_engine_close(h) == OK
print("ctypes: all checks passed")
