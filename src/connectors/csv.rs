//! CSV connector for HR exports. Placeholder until implemented.
