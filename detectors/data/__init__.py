"""Word lists the name matcher reads (see :mod:`detectors.name_frequency`)."""
