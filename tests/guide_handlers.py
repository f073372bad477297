"""The webhook handlers of Magic Hour's "Create a Webhook" guide, as the guide writes them.

Copied from the guide (docs.magichour.ai, integration/webhook/create-a-webhook): Step 1's
FastAPI handler (``app``) and the "Production Webhook Handler" (``production_app``). Their
behaviour is the guide's, unchanged: neither verifies a signature, Step 1's crashes (500) on
a body that is not JSON, and the production one answers such a body with status 200 and
``[{"error": "Internal error"}, 500]`` (FastAPI serializes the tuple). Only what the guide
leaves undefined is added (the production handler's ``update_job_status`` and friends), and
the two apps live in one module, so ruff and mypy are told to leave the guide's style alone.

Tests serve them over real loopback (``tests/asgi_server.py``) so that mhw is checked
against what Magic Hour's own users deploy.
"""
# ruff: noqa
# mypy: ignore-errors

from fastapi import FastAPI, Request, BackgroundTasks
import json
import logging

# --- Step 1: Create Your Webhook Endpoint (Python, FastAPI) ---

app = FastAPI()


@app.post("/webhook")
async def webhook_handler(request: Request):
    # Get the event data
    event = await request.json()

    # Log the event for testing
    print(f"Received event: {event['type']}")
    print(f"Payload: {json.dumps(event['payload'], indent=2)}")

    # Handle different event types
    match event["type"]:
        case "video.started":
            print("🎬 Video processing started")
        case "video.completed":
            print("✅ Video processing completed")
            # Download URL available in event['payload']['downloads']
        case "video.errored":
            print("❌ Video processing failed")
        case "image.completed":
            print("🖼️ Image processing completed")
        case "image.errored":
            print("❌ Image processing failed")

    # Always return success
    return {"success": True}


# --- Production Webhook Handler (Python, Production) ---

production_app = FastAPI()
logger = logging.getLogger(__name__)


@production_app.post("/webhook")
async def production_webhook_handler(request: Request, background_tasks: BackgroundTasks):
    try:
        event = await request.json()

        # Log the event
        logger.info(
            f"Received webhook: {event['type']}",
            extra={"job_id": event["payload"].get("id"), "status": event["payload"].get("status")},
        )

        # Respond immediately
        background_tasks.add_task(process_webhook_event, event)
        return {"success": True}

    except Exception as e:
        logger.error(f"Webhook error: {e}")
        return {"error": "Internal error"}, 500


async def process_webhook_event(event):
    """Process webhook in background"""
    try:
        event_type = event["type"]
        payload = event["payload"]

        if event_type == "video.completed":
            # Update database
            await update_job_status(payload["id"], "completed")
            # Notify user
            await notify_user_completion(payload)

        elif event_type == "video.errored":
            # Handle error
            await update_job_status(payload["id"], "failed")
            await notify_user_error(payload)

    except Exception as e:
        logger.error(f"Background processing failed: {e}")


# Left undefined by the guide ("Update database", "Notify user").


async def update_job_status(job_id, status):
    pass


async def notify_user_completion(payload):
    pass


async def notify_user_error(payload):
    pass
