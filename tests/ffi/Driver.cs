// Calls the dirsync library through powershell/DirSync.Native.cs exactly as DirSync.psm1 does,
// with UTF-16 strings including non-ASCII and astral characters. Run by tests/ffi_abi.rs with
// Mono in a folder holding config.json, src.ldif and the library.
using System;
using System.IO;
using System.Threading;
using DirSync;

public static class Driver
{
    static int failures = 0;

    static void Check(bool ok, string what)
    {
        if (!ok) { Console.Error.WriteLine("FAIL: " + what); failures++; }
    }

    static int Code(Action a)
    {
        try { a(); return 0; }
        catch (DirSyncException e) { return e.Code; }
    }

    public static int Main()
    {
        Check(Native.Load(Directory.GetCurrentDirectory()) == 1, "ABI version");
        IntPtr engine = Native.Open(File.ReadAllText("config.json"));
        Check(engine != IntPtr.Zero, "open");
        Check(Code(() => Native.Open(File.ReadAllText("config.json"))) == Native.DIRSYNC_E_LOCKED, "second open is locked");

        Native.EnableProgress(engine);
        string cycle = Native.Call("cycle", engine, "{\"policy\":\"Initial\"}");
        Check(cycle.Contains("\"InitialCycle\"") || cycle.Contains("\"runs\""), "cycle result");
        string[] events = Native.TakeProgress();
        Check(events.Length >= 3 && events[0].Contains("\"start\""), "progress events: " + events.Length);
        Native.DisableProgress(engine);

        string cs = Native.Call("cs_objects", engine, "{\"connector\":\"tgt\",\"dn\":\"uid=alice,dc=t\"}");
        Check(cs.Contains("Jürgen Müller"), "non-ASCII survives UTF-16: " + cs);
        string f = Native.Call("filter", engine, "{\"connector\":\"src\",\"object\":{\"dn\":\"cn=Zoë 𝄞,ou=People,dc=corp\",\"object_type\":\"user\",\"attributes\":{\"sn\":[\"Ünïcødé 𝄞\"]}}}");
        Check(f.Contains("\"in_scope\":true") && f.Contains("Zoë 𝄞"), "filter with non-ASCII: " + f);
        Check(Native.Call("deletion_threshold_set", engine, "{\"count\":7}").Contains("\"count\":7"), "threshold set");
        Check(Native.Call("deletion_threshold_get", engine, "{}").Contains("\"count\":7"), "threshold get");
        Check(Native.Call("history", engine, "{\"limit\":3}").StartsWith("["), "history");
        Check(Native.Call("plan", engine, "{}").Contains("summary"), "plan");
        Check(Native.Call("rules", engine, "{}").Contains("user in"), "rules");
        Check(Native.Call("connectors", engine, "{}").Contains("tgt"), "connectors");
        Check(Native.Call("mv_objects", engine, "{}").Contains("Müller"), "mv objects");
        Check(Native.Call("status", engine, "{}").Contains("metaverse_objects"), "status");
        Check(Native.Call("run_profile", engine, "{\"connector\":\"src\",\"profile\":\"DeltaSync\"}").Contains("DeltaSync"), "run profile");
        Native.ConfirmDeletes(engine);

        try { Native.Call("history", engine, "{\"bogus\":1}"); Check(false, "unknown key accepted"); }
        catch (DirSyncException e)
        {
            Check(e.Code == Native.DIRSYNC_E_INVALID_JSON && e.CodeName == "DIRSYNC_E_INVALID_JSON", "invalid json code " + e.Code);
            Check(e.Message.Contains("bogus") && e.ErrorJson.Contains("\"details\""), "error message: " + e.Message);
        }
        // Scheduler: get, set, get again (the module's Get-/Set-DirSyncScheduler requests).
        Check(Native.Call("scheduler_get", engine, "{}").Contains("\"interval_seconds\":1800"), "scheduler get");
        Check(Native.Call("scheduler_set", engine, "{\"interval_seconds\":600,\"staging_mode\":true}").Contains("\"staging_mode\":true"), "scheduler set");
        Check(Native.Call("scheduler_get", engine, "{}").Contains("\"interval_seconds\":600"), "scheduler round trip");
        Check(Code(() => Native.Call("scheduler_set", engine, "{\"interval_seconds\":0}")) == Native.DIRSYNC_E_INVALID_ARGUMENT, "scheduler bad value");
        Native.Call("scheduler_set", engine, "{\"interval_seconds\":1800,\"staging_mode\":false}");
        // UTF-16 non-ASCII and astral characters in a scheduler request (a connector override).
        IntPtr intl = Native.Open("{\"state\":{\"path\":\"state-intl.db\"},\"connectors\":[{\"name\":\"Zürich 𝄞\",\"type\":\"ldif\",\"settings\":{\"path\":\"src.ldif\"}}]}");
        string o = Native.Call("scheduler_set", intl, "{\"connector_overrides\":{\"Zürich 𝄞\":{\"full_sync_required\":true}}}");
        Check(o.Contains("\"Zürich 𝄞\":{") && o.Contains("\"full_sync_required\":true"), "override with non-ASCII name: " + o);
        Check(Native.Call("scheduler_get", intl, "{}").Contains("Zürich 𝄞"), "override round trip");
        Native.Close(intl);
        // Writeback without a cloud connector is a configuration error.
        try { Native.Call("writeback", engine, "{\"dry_run\":true}"); Check(false, "writeback without cloud connector accepted"); }
        catch (DirSyncException e) { Check(e.Code == Native.DIRSYNC_E_CONFIG && e.ErrorJson.Contains("WritebackNotConfigured"), "writeback error: " + e.ErrorJson); }
        // Single-object sync: preview keeps nothing, commit leaves the object synchronized.
        string plan = Native.Call("plan", engine, "{}");
        string preview = Native.Call("sync_object", engine, "{\"connector\":\"src\",\"dn\":\"uid=alice,ou=People,dc=corp\"}");
        Check(preview.Contains("\"committed\":false") && preview.Contains("\"action\":\"stay\"") && preview.Contains("Jürgen Müller"), "sync_object preview: " + preview);
        Check(Native.Call("plan", engine, "{}") == plan, "preview changed the plan");
        string commit = Native.Call("sync_object", engine, "{\"connector\":\"src\",\"anchor\":\"00000000-0000-4000-8000-00000000000b\",\"commit\":true}");
        Check(commit.Contains("\"committed\":true") && commit.Contains("Bob Stone"), "sync_object commit: " + commit);
        Check(Code(() => Native.Call("sync_object", engine, "{\"connector\":\"src\",\"dn\":\"uid=nö,dc=corp\"}")) == Native.DIRSYNC_E_NOT_FOUND, "sync_object unknown object");
        Check(Code(() => Native.Call("run_profile", engine, "{\"connector\":\"nö\",\"profile\":\"Export\"}")) == Native.DIRSYNC_E_NOT_FOUND, "not found");
        Check(Code(() => Native.Call("plan", engine, "{\"x\":\"\uD800\"}")) == Native.DIRSYNC_E_INVALID_UTF16, "lone surrogate");

        Check(Native.CallStage("immutable_id_from_guid", "88666888-0101-1111-bbbb-1234567890ab") == "iGhmiAEBERG7uxI0VniQqw==", "to immutableId");
        Check(Native.CallStage("guid_from_immutable_id", "iGhmiAEBERG7uxI0VniQqw==") == "88666888-0101-1111-bbbb-1234567890ab", "from immutableId");
        string imported = Native.CallStage("stage_import", "{\"connector\":{\"name\":\"s\",\"type\":\"ldif\",\"settings\":{\"path\":\"src.ldif\"}}}");
        Check(imported.Contains("Jürgen Müller"), "stage import");

        // Cancel from another thread while a cycle runs (or just before it checks).
        Thread t = new Thread(() => { Thread.Sleep(1); Native.Cancel(engine); });
        t.Start();
        int code = Code(() => Native.Call("cycle", engine, "{\"policy\":\"Initial\"}"));
        t.Join();
        Check(code == 0 || code == Native.DIRSYNC_E_CANCELLED, "cancel: " + code);

        Native.Close(engine);
        if (failures > 0) { Console.Error.WriteLine(failures + " failure(s)"); return 1; }
        Console.WriteLine("mono driver: all checks passed");
        return 0;
    }
}
