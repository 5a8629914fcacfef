"""The drills, one module per family: process faults (process.py), outages of a dependency
(outages.py), overload (overload.py). scalectl.drill.catalog registers them by name."""
