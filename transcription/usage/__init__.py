"""Usage and cost: metering, pricing, limits, reports, and their admin, API and pages."""
