"""Streamlit UI for analysts and loan officers; talks only to the scoring API."""
