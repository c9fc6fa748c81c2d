"""The AlyxCredentials block type as the Prefect UI gets it: with a logo and a documentation page.

The URLs point at public pages that were checked to exist when they were chosen (no test here
can reach the internet): the IBL logo in the Alyx repository at a fixed commit, and the
AlyxClient reference of the ONE documentation, whose settings the block holds.
"""

import asyncio

from prefect.client.orchestration import get_client

from one_flows.blocks import AlyxCredentials

LOGO = (
    "https://raw.githubusercontent.com/cortex-lab/alyx/2b60a5dab0e1deab688e7271a2125cfa74ca04af/"
    "alyx/ibl/static/ibl/favicon.png"
)
DOCUMENTATION = (
    "https://int-brain-lab.github.io/ONE/_autosummary/one.webclient.html#one.webclient.AlyxClient"
)


def test_the_registered_block_type_carries_the_logo_and_the_documentation(prefect_api):
    AlyxCredentials.register_type_and_schema()

    async def read():
        async with get_client() as client:
            return await client.read_block_type_by_slug("alyx-credentials")

    block_type = asyncio.run(read())
    assert (str(block_type.logo_url), str(block_type.documentation_url)) == (LOGO, DOCUMENTATION)
