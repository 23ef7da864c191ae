"""Engine-free rules that the offline and online paths must both obey."""
