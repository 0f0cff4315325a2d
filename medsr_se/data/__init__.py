"""Data preparation: turning STARE (or any folder of fundus / medical images) into BasicSR-ready pairs."""
