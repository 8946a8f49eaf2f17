"""Placeholder router (issue 15 work in progress)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["ollama"])
