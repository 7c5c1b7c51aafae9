"""The reference orders app: the seed's order service built with cqrs_kit."""
