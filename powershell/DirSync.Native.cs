// P/Invoke class of the DirSync PowerShell module: the UTF-16 (_w) entry points of the dirsync
// native library (include/dirsync.h). Loaded by DirSync.psm1 with Add-Type; compiled and run
// by the crate's tests with Mono (tests/ffi/Driver.cs). Keep every declaration in step with the
// header: tests/ffi_module.rs checks names and parameters.
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading.Tasks;

namespace DirSync
{
    /// <summary>A failed native call: the status code and the library's JSON error.</summary>
    public class DirSyncException : Exception
    {
        public int Code { get; private set; }
        public string ErrorJson { get; private set; }
        public string Function { get; private set; }

        public DirSyncException(string function, int code, string errorJson, string message)
            : base(message)
        {
            Function = function;
            Code = code;
            ErrorJson = errorJson;
        }

        /// <summary>The symbolic name of the status code (DIRSYNC_E_...).</summary>
        public string CodeName { get { return Native.StatusName(Code); } }
    }

    /// <summary>Progress callback receiving one UTF-16 JSON event.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void ProgressCallbackW(IntPtr eventJson, IntPtr userData);

    public static class Native
    {
        private const string Lib = "dirsync";

        public const int DIRSYNC_OK = 0;
        public const int DIRSYNC_E_INVALID_ARGUMENT = -1;
        public const int DIRSYNC_E_INVALID_UTF8 = -2;
        public const int DIRSYNC_E_INVALID_UTF16 = -3;
        public const int DIRSYNC_E_INVALID_JSON = -4;
        public const int DIRSYNC_E_CONFIG = -5;
        public const int DIRSYNC_E_STATE = -6;
        public const int DIRSYNC_E_LOCKED = -7;
        public const int DIRSYNC_E_CONNECTION = -8;
        public const int DIRSYNC_E_AUTHENTICATION = -9;
        public const int DIRSYNC_E_THROTTLED = -10;
        public const int DIRSYNC_E_CONNECTOR = -11;
        public const int DIRSYNC_E_EMPTY_IMPORT = -12;
        public const int DIRSYNC_E_THRESHOLD_EXCEEDED = -13;
        public const int DIRSYNC_E_NOT_FOUND = -14;
        public const int DIRSYNC_E_CANCELLED = -15;
        public const int DIRSYNC_E_NOT_SUPPORTED = -16;
        public const int DIRSYNC_E_INTERNAL = -99;

        // ---- declarations (UTF-16 forms) ----

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint dirsync_abi_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int dirsync_last_error_w(out IntPtr result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern void dirsync_wstring_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_engine_open_w([MarshalAs(UnmanagedType.LPWStr)] string config, out IntPtr engine);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int dirsync_engine_close(IntPtr engine);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int dirsync_engine_cancel(IntPtr engine);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int dirsync_engine_set_progress_w(IntPtr engine, ProgressCallbackW callback, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int dirsync_confirm_deletes(IntPtr engine);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_cycle_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_run_profile_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_plan_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_status_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_history_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_cs_objects_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_mv_objects_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_connectors_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_rules_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_filter_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_deletion_threshold_get_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_deletion_threshold_set_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_scheduler_get_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_scheduler_set_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_writeback_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_set_password_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_sync_object_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_test_permission_w(IntPtr engine, [MarshalAs(UnmanagedType.LPWStr)] string request, out IntPtr result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_stage_import_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_stage_filter_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_stage_transform_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_stage_plan_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_stage_export_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_immutable_id_from_guid_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Unicode)]
        public static extern int dirsync_guid_from_immutable_id_w([MarshalAs(UnmanagedType.LPWStr)] string input, out IntPtr result);

        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true, EntryPoint = "LoadLibraryW")]
        private static extern IntPtr LoadLibraryW(string path);

        // ---- loading the library from the module folder ----

        private static bool loaded;
        private static IntPtr libraryHandle = IntPtr.Zero;

        /// <summary>The native library's file name on this platform.</summary>
        public static string LibraryFileName()
        {
            if (Environment.OSVersion.Platform == PlatformID.Win32NT) return "dirsync.dll";
            if (File.Exists("/usr/lib/libSystem.dylib") || Directory.Exists("/System/Library/CoreServices")) return "libdirsync.dylib";
            return "libdirsync.so";
        }

        private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
        {
            return name == Lib ? libraryHandle : IntPtr.Zero;
        }

        /// <summary>
        /// Makes the P/Invoke declarations use the library in <paramref name="directory"/>:
        /// on .NET Core / PowerShell 7 through NativeLibrary and a DllImport resolver, on
        /// Windows PowerShell by loading the DLL first; Mono finds it next to the program.
        /// Returns the ABI version.
        /// </summary>
        public static uint Load(string directory)
        {
            lock (typeof(Native))
            {
                if (!loaded)
                {
                    string file = Path.Combine(directory, LibraryFileName());
                    Type nativeLibrary = Type.GetType("System.Runtime.InteropServices.NativeLibrary");
                    Type resolverType = Type.GetType("System.Runtime.InteropServices.DllImportResolver");
                    if (nativeLibrary != null && resolverType != null && File.Exists(file))
                    {
                        MethodInfo load = nativeLibrary.GetMethod("Load", new Type[] { typeof(string) });
                        libraryHandle = (IntPtr)load.Invoke(null, new object[] { file });
                        Delegate resolver = Delegate.CreateDelegate(resolverType,
                            typeof(Native).GetMethod("Resolve", BindingFlags.NonPublic | BindingFlags.Static));
                        nativeLibrary.GetMethod("SetDllImportResolver").Invoke(null, new object[] { typeof(Native).Assembly, resolver });
                    }
                    else if (Environment.OSVersion.Platform == PlatformID.Win32NT && File.Exists(file))
                    {
                        if (LoadLibraryW(file) == IntPtr.Zero)
                            throw new DllNotFoundException(file + ": " + Marshal.GetLastWin32Error());
                    }
                    loaded = true;
                }
            }
            uint v = dirsync_abi_version();
            if (v != 1) throw new InvalidOperationException("dirsync ABI version " + v + " is not supported by this module (1)");
            return v;
        }

        // ---- helpers used by the module ----

        /// <summary>DIRSYNC_E_... name of a status code.</summary>
        public static string StatusName(int code)
        {
            foreach (FieldInfo f in typeof(Native).GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                if (f.IsLiteral && f.FieldType == typeof(int) && (int)f.GetValue(null) == code) return f.Name;
            }
            return "DIRSYNC_E_" + code;
        }

        /// <summary>Takes ownership of a returned UTF-16 string.</summary>
        public static string TakeString(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            try { return Marshal.PtrToStringUni(p); }
            finally { dirsync_wstring_free(p); }
        }

        /// <summary>The calling thread's last error as JSON.</summary>
        public static string LastError()
        {
            IntPtr p;
            return dirsync_last_error_w(out p) == DIRSYNC_OK ? TakeString(p) : "{\"code\":-99,\"message\":\"no error detail\",\"details\":null}";
        }

        private static string Finish(string function, int status, IntPtr result)
        {
            if (status == DIRSYNC_OK) return TakeString(result);
            string json = LastError();
            string message = json;
            int i = json.IndexOf("\"message\":\"", StringComparison.Ordinal);
            if (i >= 0)
            {
                int start = i + 11, end = start;
                while (end < json.Length && !(json[end] == '"' && json[end - 1] != '\\')) end++;
                message = json.Substring(start, end - start).Replace("\\\"", "\"").Replace("\\\\", "\\");
            }
            throw new DirSyncException(function, status, json, message);
        }

        private delegate int HandleOp(IntPtr engine, string request, out IntPtr result);
        private delegate int FreeOp(string input, out IntPtr result);

        private static readonly Dictionary<string, HandleOp> handleOps = new Dictionary<string, HandleOp>
        {
            { "cycle", dirsync_cycle_w }, { "run_profile", dirsync_run_profile_w }, { "plan", dirsync_plan_w },
            { "status", dirsync_status_w }, { "history", dirsync_history_w }, { "cs_objects", dirsync_cs_objects_w },
            { "mv_objects", dirsync_mv_objects_w }, { "connectors", dirsync_connectors_w }, { "rules", dirsync_rules_w },
            { "filter", dirsync_filter_w }, { "deletion_threshold_get", dirsync_deletion_threshold_get_w },
            { "deletion_threshold_set", dirsync_deletion_threshold_set_w }, { "scheduler_get", dirsync_scheduler_get_w },
            { "scheduler_set", dirsync_scheduler_set_w }, { "writeback", dirsync_writeback_w },
            { "set_password", dirsync_set_password_w }, { "sync_object", dirsync_sync_object_w },
            { "test_permission", dirsync_test_permission_w },
        };

        private static readonly Dictionary<string, FreeOp> freeOps = new Dictionary<string, FreeOp>
        {
            { "stage_import", dirsync_stage_import_w }, { "stage_filter", dirsync_stage_filter_w },
            { "stage_transform", dirsync_stage_transform_w }, { "stage_plan", dirsync_stage_plan_w },
            { "stage_export", dirsync_stage_export_w }, { "immutable_id_from_guid", dirsync_immutable_id_from_guid_w },
            { "guid_from_immutable_id", dirsync_guid_from_immutable_id_w },
        };

        /// <summary>Calls dirsync_{op}_w on an engine; returns the result JSON or throws.</summary>
        public static string Call(string op, IntPtr engine, string request)
        {
            HandleOp f;
            if (!handleOps.TryGetValue(op, out f)) throw new ArgumentException("unknown operation " + op);
            IntPtr result;
            int status = f(engine, request, out result);
            return Finish("dirsync_" + op + "_w", status, result);
        }

        /// <summary>Calls a stage or conversion function dirsync_{op}_w; returns the result or throws.</summary>
        public static string CallStage(string op, string input)
        {
            FreeOp f;
            if (!freeOps.TryGetValue(op, out f)) throw new ArgumentException("unknown operation " + op);
            IntPtr result;
            int status = f(input, out result);
            return Finish("dirsync_" + op + "_w", status, result);
        }

        /// <summary>
        /// Runs <see cref="Call"/> on a worker thread so the caller can drain progress events and
        /// cancel (Ctrl+C) while the native call runs.
        /// </summary>
        public static Task<string> CallAsync(string op, IntPtr engine, string request)
        {
            return Task.Factory.StartNew(() => Call(op, engine, request), TaskCreationOptions.LongRunning);
        }

        /// <summary>Opens an engine from a TOML path or JSON text.</summary>
        public static IntPtr Open(string config)
        {
            IntPtr engine;
            int status = dirsync_engine_open_w(config, out engine);
            Finish("dirsync_engine_open_w", status, IntPtr.Zero);
            return engine;
        }

        /// <summary>Closes an engine handle.</summary>
        public static void Close(IntPtr engine)
        {
            Finish("dirsync_engine_close", dirsync_engine_close(engine), IntPtr.Zero);
        }

        /// <summary>Asks the running call on this engine to stop (from any thread).</summary>
        public static void Cancel(IntPtr engine)
        {
            Finish("dirsync_engine_cancel", dirsync_engine_cancel(engine), IntPtr.Zero);
        }

        /// <summary>Confirms deletes above the threshold for the next export.</summary>
        public static void ConfirmDeletes(IntPtr engine)
        {
            Finish("dirsync_confirm_deletes", dirsync_confirm_deletes(engine), IntPtr.Zero);
        }

        private static readonly object progressLock = new object();
        private static readonly Dictionary<IntPtr, ProgressCallbackW> callbacks = new Dictionary<IntPtr, ProgressCallbackW>();
        private static readonly Queue<string> progressEvents = new Queue<string>();

        private static void OnProgress(IntPtr eventJson, IntPtr userData)
        {
            string json = Marshal.PtrToStringUni(eventJson);
            lock (progressLock) { if (progressEvents.Count < 10000) progressEvents.Enqueue(json); }
        }

        /// <summary>
        /// Queues the engine's progress events (JSON) for <see cref="TakeProgress"/>: PowerShell
        /// cannot run script blocks on the native thread, so the module drains the queue.
        /// </summary>
        public static void EnableProgress(IntPtr engine)
        {
            ProgressCallbackW cb = OnProgress;
            lock (progressLock) { callbacks[engine] = cb; }
            Finish("dirsync_engine_set_progress_w", dirsync_engine_set_progress_w(engine, cb, IntPtr.Zero), IntPtr.Zero);
        }

        /// <summary>Removes the progress callback of an engine.</summary>
        public static void DisableProgress(IntPtr engine)
        {
            Finish("dirsync_engine_set_progress_w", dirsync_engine_set_progress_w(engine, null, IntPtr.Zero), IntPtr.Zero);
            lock (progressLock) { callbacks.Remove(engine); }
        }

        /// <summary>The progress events received so far (and clears them).</summary>
        public static string[] TakeProgress()
        {
            lock (progressLock)
            {
                string[] all = progressEvents.ToArray();
                progressEvents.Clear();
                return all;
            }
        }
    }
}
