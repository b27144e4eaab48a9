"""Tests of the Streamlit UI (ui/)."""
