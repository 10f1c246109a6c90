"""Model backends behind one interface (:class:`resources.runners.base.ModelBackend`)."""
