"""Inference backends behind one interface (:class:`stip_rt.runtime.base.Backend`)."""
