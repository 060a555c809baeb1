"""Streamlit pages of the Curbside dashboard (thin: they call dispatch services)."""
