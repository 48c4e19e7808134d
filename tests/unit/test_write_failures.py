"""What a failed write means: the rows (isolate them, set the refused ones aside) or the
database (an outage, retried). Only errors a row can cause are the rows' fault: a
missing table or a permission must not send the whole log into dead_letters."""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
from asyncpg import exceptions as pg
from sqlalchemy import exc as sa_exc

from app.store.writer import describe, failure_kind

ROWS = [
    pg.StringDataRightTruncationError("value too long for type character varying(64)"),
    pg.NumericValueOutOfRangeError("smallint out of range"),
    pg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
    pg.NotNullViolationError("null value in column"),
    pg.UniqueViolationError("duplicate key value"),
    pg.ForeignKeyViolationError("violates foreign key constraint"),
    pg.CardinalityViolationError("ON CONFLICT DO UPDATE command cannot affect row a second time"),
    pg.ProgramLimitExceededError("index row size exceeds maximum"),
    asyncpg.exceptions._base.DataError("invalid input for query argument $1"),  # client side
    TypeError("copy_binary(): a timestamptz must be a datetime"),
    ValueError("naive datetime given to a UTC column"),
    OverflowError("int too big to convert"),
    sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("NOT NULL constraint failed")),
    sa_exc.ProgrammingError(
        "INSERT", {}, sqlite3.ProgrammingError("Error binding parameter 1: type 'dict'")
    ),
    sa_exc.StatementError("bind", "INSERT", {}, ValueError("naive datetime")),
]
UNREACHABLE = [
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
    OSError(113, "No route to host"),
    pg.CannotConnectNowError("the database system is shutting down"),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
]
REFUSING = [
    pg.UndefinedTableError('relation "calls" does not exist'),
    pg.UndefinedColumnError('column "data_gap" does not exist'),
    pg.InsufficientPrivilegeError("permission denied for table calls"),
    pg.DiskFullError("could not extend file"),
    pg.DeadlockDetectedError("deadlock detected"),
    pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    pg.QueryCanceledError("canceling statement due to statement timeout"),
    sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
    sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("no such table: calls")),
    KeyError("a bug in the writer is not the rows' fault"),
]


@pytest.mark.parametrize("exc", ROWS, ids=lambda e: type(e).__name__)
def test_errors_a_row_causes_are_the_rows(exc: BaseException) -> None:
    assert failure_kind(exc) == "rows"


@pytest.mark.parametrize("exc", UNREACHABLE, ids=lambda e: type(e).__name__)
def test_a_database_away_is_unreachable(exc: BaseException) -> None:
    assert failure_kind(exc) == "unreachable"


@pytest.mark.parametrize("exc", REFUSING, ids=lambda e: type(e).__name__)
def test_a_database_that_takes_no_writes_is_refusing(exc: BaseException) -> None:
    assert failure_kind(exc) == "refusing"


def test_describe_names_the_error_and_its_sqlstate_not_the_statement() -> None:
    assert describe(pg.StringDataRightTruncationError("too long")) == (
        "StringDataRightTruncationError 22001: too long"
    )
    wrapped = sa_exc.IntegrityError(
        "INSERT INTO calls VALUES (?)", {"caller_hash": "x"}, sqlite3.IntegrityError("NOT NULL")
    )
    assert describe(wrapped) == "IntegrityError: NOT NULL"
    assert len(describe(ValueError("x" * 2000))) == 500
