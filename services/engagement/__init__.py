"""Engagement: tiers' qualification, activities beyond purchases, referrals, transfers and
donations. It sits after earning and before settlement in the order of services."""
