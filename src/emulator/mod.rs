//! Microsoft Graph tenant emulator (offline tenant). Placeholder until implemented (issue 5).
