"""Deployment helpers: throwaway local services for tests, CI and local clusters."""
