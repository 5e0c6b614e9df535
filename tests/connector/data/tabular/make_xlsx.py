"""Write the example export's registry extract, ``registry_2024.xlsx``.

The workbook is generated rather than committed: openpyxl stamps the time into every file it
saves, so a committed copy would change at each regeneration. Run this file to write it next to
the CSV files (``python tests/connector/data/tabular/make_xlsx.py``); the tests write their own.

It is shaped like a real tumour-registry export: a title row above the header, an MRN stored as
a number in one row and as text in another, diagnosis dates as real Excel dates (one typed as
text), treatment start dates as bare Excel serial numbers, and a patient without treatment.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

SHEET = "肿瘤登记"
HEADER = ("登记号", "病历号", "姓名", "诊断编码", "诊断日期", "治疗药物", "用药开始")
ROWS = (
    ("T001", 100001, "张伟", "C34.1", dt.datetime(2024, 1, 8), "L01XE03", 45300),
    ("T002", 100003, "王芳", "c509", dt.datetime(2023, 9, 25), None, None),
    ("T003", "100005", "陈静", "C18.7", "2024-02-20", "L01BC06", 45350.0),
)


def write_registry(path: Path) -> Path:
    """Write the registry workbook to ``path`` and return it."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(["某医院肿瘤登记导出 2024"])
    sheet.append(list(HEADER))
    for row in ROWS:
        sheet.append(list(row))
    for cell in sheet["E"][2:]:
        if isinstance(cell.value, dt.datetime):
            cell.number_format = "yyyy-mm-dd"
    book.create_sheet("说明").append(["本表由登记系统导出"])
    book.save(path)
    return path


if __name__ == "__main__":
    write_registry(Path(__file__).with_name("registry_2024.xlsx"))
