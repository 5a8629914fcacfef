"""Fault drills against the local stack: bounded load, one fault, restored, measured."""
