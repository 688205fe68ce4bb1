"""GPU paths that come from other packages (imported only when asked for)."""
