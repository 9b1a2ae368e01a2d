"""Provider adapters behind one small interface (:class:`base.Provider`)."""
