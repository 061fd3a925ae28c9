"""Earning: the rules that decide what a purchase earns, and why (the earn breakdown)."""
