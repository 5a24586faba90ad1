"""The dashboard's pages, each a script ``st.navigation`` runs (not modules to import)."""
