"""Small shared pieces every resource uses: ids, time, auth, pagination, schemas."""
