"""The Dagster code location: the interval GCS import factory, the worker launcher and the definitions."""
