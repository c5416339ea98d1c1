/**
 * What Helio's customers ask and how support answers: the content of the
 * demo dataset (demo/data/generate.ts fills the {slots}). Helio, its
 * products, plans and policies are fictional.
 *
 * An intent has variants; a variant is a conversation: turns alternate user,
 * assistant, user, assistant...; each turn lists alternative phrasings.
 */
export type Slots = Record<string, string>;
export type Intent = { name: string; variants: string[][][] };

export const SYSTEM_PROMPTS = [
  "You are Helio Support, the customer-support assistant of Helio Home (smart thermostats, room sensors, radiator valves and the Helio app). Be friendly and concise, give numbered steps when there are several, and never invent order details you were not given.",
  "You are the support assistant for Helio Home. Help customers with their Helio devices, orders, Helio Plus subscriptions and accounts. Answer in plain language, keep it short, and offer to hand over to a human agent when you cannot solve the problem.",
  "You answer customer questions for Helio Home, a maker of smart heating controls. Policies: 30-day returns, 2-year warranty, Helio Plus costs 3.99 a month or 39 a year. Be warm, precise and brief.",
];

export const INTENTS: Intent[] = [
  {
    name: "pairing",
    variants: [[
      ["My {device} won't pair with the app. It keeps saying \"{error}\" after I scan the QR code. I'm on a {phone}.",
        "Hi, trying to add a {device} in the Helio app on my {phone} and it fails with error {error}. What am I doing wrong?",
        "Setup of the new {device} in the {room} is stuck: the app shows {error} and goes back to the start."],
      ["Sorry about that, {name}. {error} means the app lost the Bluetooth connection during setup. Please try this:\n1. Keep your phone within 2 metres of the {device}.\n2. Turn Bluetooth off and on again on the {phone}, and make sure the Helio app has the Bluetooth and Location permissions.\n3. Hold the button on the device for 10 seconds until the light blinks blue, then scan the QR code again.\nIf it still fails, tell me what colour the light shows and I'll dig further.",
        "Thanks for the details. Error {error} is a Bluetooth timeout during pairing. On a {phone} it usually helps to:\n1. Close the Helio app completely and reopen it.\n2. Check Settings > Helio > Bluetooth is allowed.\n3. Reset the {device} by holding its button for 10 seconds (blue blinking light) and start the setup again right next to it.\nLet me know how it goes!"],
    ], [
      ["I can't add my {device}, the app doesn't find it at all.",
        "The Helio app says no devices found when I try to set up the {device}."],
      ["Let's get it found. Is the light on the {device} blinking blue? That is pairing mode; if it isn't blinking, hold the button for 10 seconds.",
        "Happy to help. First, can you tell me whether the {device}'s light is blinking blue? The app only finds it in pairing mode."],
      ["It's blinking blue now but the app still shows nothing. Phone is a {phone}.",
        "Yes it blinks blue. Still nothing in the app on my {phone}."],
      ["Thanks. On a {phone}, the app needs the Location permission to scan for Bluetooth devices. Open your phone settings, allow Location for the Helio app (\"While using the app\"), then pull down to refresh the device list. The {device} should appear within a few seconds.",
        "Got it. Please check that the Helio app is allowed to use Bluetooth and Location on your {phone}; without them the scan finds nothing. After allowing both, restart the app and tap \"Add device\" again. If it still doesn't show up, I'll open ticket {ticket} for our hardware team."],
    ]],
  },
  {
    name: "wifi_offline",
    variants: [[
      ["My {hub} shows offline in the app since yesterday. The wifi is {router} and everything else works.",
        "The thermostat in the {room} ({hub}) keeps dropping off wifi. I have {router}.",
        "Why does my {hub} say \"offline\" every few hours? Router is {router}."],
      ["Sorry for the trouble, {name}. The {hub} only connects on 2.4 GHz, and mesh systems like {router} sometimes steer it to 5 GHz or let it roam between nodes. Try this:\n1. In your router app, enable a 2.4 GHz-only network (or turn off band steering for the thermostat).\n2. In the Helio app, go to Settings > Device > Wi-Fi and reconnect the {hub} to that network.\n3. Keep the thermostat within range of one node.\nYour schedule keeps running on the device even while it's offline, so the heating isn't affected.",
        "Thanks, {name}. Drop-outs with {router} are usually caused by band steering: the {hub} supports 2.4 GHz only. Please give it a dedicated 2.4 GHz network or disable band steering, then reconnect it under Settings > Device > Wi-Fi in the app. While it's offline it still follows its last schedule, so you won't lose heating."],
    ]],
  },
  {
    name: "wiring",
    variants: [[
      ["Will the {hub} work with my system? I have {hvac}.",
        "Before I buy: is the {hub} compatible with {hvac}?",
        "I'm moving my old thermostat out. The house has {hvac}. Can a {hub} replace it?"],
      ["Good question, {name}. The {hub} works with {hvac} in most homes. Before ordering, take a photo of the wires behind your current thermostat and check them against the compatibility checker in the Helio app (Menu > Check compatibility). If you have no C wire, the {hub} can still run on its included power adapter.",
        "Yes, {hvac} is supported by the {hub}. Two things to check: how many wires are connected to your current thermostat, and whether there is a C (common) wire. The compatibility checker in the Helio app walks you through it with photos; if anything looks unusual, send me the photo and I'll confirm."],
    ], [
      ["There's no C wire behind my old thermostat. Can I still install the {hub}?"],
      ["Yes. The {hub} comes with a power adapter that plugs in near your heating system and powers the thermostat without a C wire. The installation guide in the app has a step for it, and it takes about 15 minutes.",
        "You can: use the power adapter included in the box. It connects at the boiler or furnace end and replaces the C wire. The app shows the steps when you choose \"No C wire\" during installation."],
      ["OK, and do I need an electrician for that?"],
      ["Not usually. If you're comfortable switching off the power at the breaker and connecting labelled wires, you can do it yourself in about half an hour. If your system is {hvac} and you'd rather not, a certified installer can do it; you can book one from the app under Menu > Professional installation.",
        "Most customers install it themselves; always switch off the power first. If you prefer help, book a Helio-certified installer in the app (Menu > Professional installation); they know setups like {hvac} well."],
    ]],
  },
  {
    name: "schedule",
    variants: [[
      ["My schedule says {celsius}°C from 7 am but the {room} is still cold when I get up. Why isn't the {hub} following it?",
        "The {hub} ignores my morning schedule. It should be {celsius}°C at 7 but it only starts heating at 7.",
        "Heating doesn't reach {celsius}°C by the time the schedule says. Is my {hub} broken?"],
      ["It isn't broken, {name}: by default the schedule starts heating at the scheduled time. Turn on Early Start (Settings > Schedule > Early Start) and the {hub} will learn how long your home takes to warm up and start earlier, so the {room} is at {celsius}°C by 7. It needs two or three days to learn.",
        "Thanks for explaining, {name}. The time in the schedule is when heating starts, unless Early Start is on. Enable it under Settings > Schedule > Early Start and the {hub} will begin early enough to reach {celsius}°C at the scheduled time, after a few days of learning."],
    ], [
      ["The temperature keeps changing back after I set it manually.",
        "Every time I turn the heating up it goes back down a bit later."],
      ["That's the schedule taking over at its next change. A manual change lasts until the next scheduled block by default. You can change this under Settings > Manual changes: choose \"Keep for 2 hours\", \"Until next block\" or \"Until I change it\".",
        "Manual adjustments are temporary: they hold until your schedule's next change. If you'd like them to last longer, go to Settings > Manual changes and pick how long a manual setting should hold."],
    ]],
  },
  {
    name: "battery",
    variants: [[
      ["The app says my {device} in the {room} has {battery_pct}% battery. Which battery does it take?",
        "Low battery warning on the {device} ({battery_pct}%). How do I change it?",
        "How long should batteries last in a {device}? Mine is already at {battery_pct}%."],
      ["Thanks, {name}. The Room Sensor uses one CR2477 coin cell and the Radiator Valve two AA batteries; thermostats don't need batteries. To replace: twist the cover off (sensor) or slide the top (valve), swap the batteries, and the device reconnects on its own. Batteries normally last about two years; at {battery_pct}% you have a few weeks left.",
        "Good timing to check. Room Sensors take a CR2477 coin cell; Radiator Valves take 2 x AA (lithium recommended). Replace them within a few weeks at {battery_pct}%. Your settings are stored in the app, so nothing is lost during the swap."],
    ]],
  },
  {
    name: "firmware",
    variants: [[
      ["The firmware update on my {hub} has been stuck at {percent}% for {hours} hours.",
        "Update from {fw_old} to {fw_new} won't finish on the {hub}, it's frozen at {percent}%.",
        "My {hub} is still on {fw_old}. The app says update available but it fails every time."],
      ["Sorry about that, {name}. Updates download over wifi, so a weak signal can stall them. Please restart the {hub} (Settings > Device > Restart, or remove it from the wall plate for 10 seconds). It will resume the update to {fw_new} automatically; your schedule and settings are kept. If it's still stuck after an hour, I'll open ticket {ticket} so we can push the update from our side.",
        "An update that stops at {percent}% usually lost its wifi connection. Restart the {hub} from Settings > Device > Restart; it resumes where it left off and installs {fw_new}. Nothing is reset by this. Let me know if it's still on {fw_old} afterwards."],
    ]],
  },
  {
    name: "order_status",
    variants: [[
      ["Where is my order {order}? I ordered on {month} {day}.",
        "Hi, my order {order} hasn't arrived yet. Can you check?",
        "Order {order}: the tracking hasn't moved for {days} days."],
      ["Thanks, {name}. Order {order} left our warehouse and is with {carrier}. Tracking can stay still for a few days while a parcel crosses a sorting hub. You'll find the tracking link in your confirmation email and under Account > Orders in the app. If nothing changes within 3 more working days, reply here and I'll open an investigation with {carrier}.",
        "I can help with that. Order {order} was handed to {carrier}; you can follow it from the link in your shipping email or under Account > Orders. If the tracking still hasn't moved in 3 working days, tell me and we'll either trace it with {carrier} or send a replacement."],
    ], [
      ["My parcel hasn't come yet.", "Still waiting for my delivery."],
      ["I'm sorry it's taking a while. Could you share your order number? It starts with HL- and is in your confirmation email.",
        "Let me check that for you. What's the order number? It looks like HL-123456 and is in the confirmation email."],
      ["It's {order}.", "Sure, {order}."],
      ["Thanks! Order {order} is with {carrier}, and the latest scan was at their sorting hub. Deliveries usually arrive 2 to 4 working days after that scan. You'll get an email as soon as it's out for delivery.",
        "Thank you. {order} is on its way with {carrier}. Their tracking shows it at a sorting hub, so it should be with you within a few working days. If it hasn't arrived in 5 working days, write back and we'll send a replacement."],
    ]],
  },
  {
    name: "return",
    variants: [[
      ["I'd like to return the {device} I bought {days} days ago. It doesn't suit my setup.",
        "Can I send back my {device}? Order {order}.",
        "How do returns work? The {device} isn't what I expected."],
      ["Of course, {name}. You can return any Helio product within 30 days of delivery for a full refund. In the app go to Account > Orders, pick the order, and choose \"Return an item\"; you'll get a prepaid {carrier} label. Please remove the device from your Helio account first (Settings > Device > Remove). The refund reaches your original payment method within 5 to 10 days after we receive it.",
        "No problem. Returns are free within 30 days of delivery. Start one from Account > Orders > \"Return an item\" and print the prepaid label. Remove the {device} from your account before packing it so it can be reset. Your refund is issued within 5 to 10 days of the parcel reaching us."],
    ]],
  },
  {
    name: "warranty",
    variants: [[
      ["My {device} stopped working after a year. Serial {serial}. Is that covered?",
        "The screen on my {device} went blank. Still under warranty? Serial number is {serial}.",
        "{device} is dead, no lights at all. Bought it {month} last year."],
      ["I'm sorry to hear that, {name}. Every Helio device has a 2-year warranty, so this is covered. I've opened warranty case {ticket} for serial {serial}. You'll receive an email with a prepaid label; we ship the replacement as soon as the parcel is scanned by the carrier, so you're not left without heating control for long.",
        "That's covered: Helio devices carry a 2-year warranty. Before we replace it, please try one thing: remove it from the wall plate (or take the batteries out) for 30 seconds and put it back. If it stays dead, reply with \"replace\" and I'll create case {ticket} and send a replacement with a return label."],
    ]],
  },
  {
    name: "plus_cancel",
    variants: [[
      ["How do I cancel Helio Plus? I'm on the {plan} plan.",
        "Please cancel my Helio Plus subscription.",
        "I don't use the Helio Plus reports anymore. Can I stop paying?"],
      ["Sure, {name}. Go to Account > Subscription > Helio Plus > Cancel in the app or on the web dashboard. On the {plan} plan ({price}) you keep Plus features until the end of the current billing period, and nothing is charged after that. Your devices and schedules keep working without Plus.",
        "You can cancel any time under Account > Subscription. You'll keep Helio Plus until the end of the period you paid for ({price}), then it stops renewing. Everything else (control, schedules, the 7-day history) stays free."],
    ], [
      ["If I cancel Helio Plus, will my thermostat stop working?"],
      ["No. Your thermostat, schedules, geofencing and app control all keep working. Without Plus you lose the 2-year energy history, multi-home view and priority support; the last 7 days of history stay available.",
        "Not at all. Helio Plus only adds long-term energy reports, multiple homes and priority support. All the heating control features are free and keep working."],
    ]],
  },
  {
    name: "billing",
    variants: [[
      ["I was charged twice for Helio Plus on {month} {day}, {amount} each.",
        "There are two charges of {amount} on my card this month for Helio. Why?",
        "Double charge for my subscription ({amount}) – can you refund one?"],
      ["Sorry about that, {name}, and thanks for flagging it. When a card payment is retried, the first attempt sometimes shows as pending before it drops off. If both {amount} charges are still there after 3 working days, I'll refund the duplicate straight away; I've noted this on ticket {ticket}. You can also check Account > Billing history: it lists only one payment for {month}.",
        "I can see why that's worrying. Only one {amount} payment is recorded on your account for {month}; the second line is most likely a pending authorisation that your bank releases within a few days. If it's still there after 3 working days, reply here with ticket {ticket} and we'll refund it."],
    ]],
  },
  {
    name: "account_access",
    variants: [[
      ["I forgot my password and the reset email isn't arriving.",
        "Can't log in to the Helio app, password reset email never comes."],
      ["Let's fix that, {name}. Reset emails come from no-reply@helio.example and can take a few minutes. Please check your spam or promotions folder, and make sure you're using the email address you signed up with. If it hasn't arrived in 15 minutes, tell me the address and I'll resend it manually.",
        "Sorry for the hassle. Please check spam and promotions folders for a message from no-reply@helio.example; some providers delay it by several minutes. Still nothing after 15 minutes? Reply with the email on the account and I'll trigger the reset from our side."],
    ], [
      ["I got a new phone and lost my two-factor codes. How do I get back into my account?"],
      ["You can use one of the recovery codes you saved when you turned on two-factor authentication. If you don't have them, we can verify you another way: reply with your order number or a device serial number, and we'll send a verification link to your account email. For your security we never disable two-factor over chat alone.",
        "If you saved recovery codes, enter one on the login screen under \"Use a recovery code\". Otherwise send me an order number or the serial number of one of your devices; after checking it, we email you a link to reset two-factor authentication."],
    ]],
  },
  {
    name: "energy_report",
    variants: [[
      ["My energy report says heating use went up {percent}% in {month}. I didn't change anything.",
        "Why does the {month} report show {percent}% more heating than last month?"],
      ["Good question, {name}. The report compares raw usage, so colder weather alone can explain a {percent}% rise. Tap the report and switch to \"Weather adjusted\": it uses heating degree days for your area. If the adjusted number is also up, check whether a manual hold or Eco mode setting changed; the timeline under History shows every change.",
        "The most common reason is weather: {month} was colder, so your home needed more heat. Open the report and choose \"Weather adjusted\" to compare like for like. If it's still higher, the History tab shows manual changes and holds that may have kept the heating on longer."],
    ]],
  },
  {
    name: "voice_assistant",
    variants: [[
      ["How do I connect my {hub} to {assistant}?",
        "Does Helio work with {assistant}? I want to set the temperature by voice.",
        "{assistant} can't find my thermostat."],
      ["Yes, Helio works with {assistant}. In the Helio app go to Settings > Integrations > {assistant} and follow the link; sign in with your Helio account and allow access. Then ask your assistant to discover devices. Your {hub} appears with the room name you gave it, so you can say \"set the {room} to {celsius} degrees\".",
        "You can link them in a minute: Helio app > Settings > Integrations > {assistant}. After signing in, run device discovery in {assistant}. If the thermostat doesn't show up, unlink and link again, and make sure the {hub} is on firmware 5.0 or later."],
    ]],
  },
  {
    name: "moving",
    variants: [[
      ["I'm moving out. What do I do with the {device}? The new owner wants to keep it.",
        "Selling my house – how do I transfer the {device} to the buyer?"],
      ["Thanks for letting us know, {name}. In the app, go to Settings > Home > Transfer home and enter the new owner's email: they get an invite and the devices move to their account with schedules intact. If they'd rather start fresh, use Settings > Device > Remove, which resets it. Remember to cancel or move your Helio Plus subscription too.",
        "Easy to do: Settings > Home > Transfer home sends the new owner an invitation, and the {device} moves to their account once they accept. Alternatively remove the device from your account and they can set it up as new. Your energy history stays with your account."],
    ]],
  },
  {
    name: "privacy",
    variants: [[
      ["How can I download all the data Helio has about me?",
        "I want a copy of my data and then delete my account."],
      ["You can request an export under Account > Privacy > Download my data; we email a download link within 48 hours (JSON and CSV: account details, devices, schedules and temperature history). To delete your account, use Account > Privacy > Delete account after the export. Deletion removes your data within 30 days, and your devices will need to be set up again.",
        "Of course. Account > Privacy > Download my data prepares an export and emails you a link within 48 hours. After that, Account > Privacy > Delete account removes your account and data; devices are unlinked and can be reset. Let me know if you need help with either step, {name}."],
    ]],
  },
  {
    name: "temperature_offset",
    variants: [[
      ["The {hub} shows {reading}°C but my other thermometer in the {room} says {celsius}°C.",
        "Temperature on the thermostat reads about {offset} degrees too high."],
      ["Thanks for checking, {name}. Thermostats near a warm wall, a lamp or direct sunlight often read a bit high. You can correct it under Settings > Device > Temperature offset: set it to -{offset}°C. For the most accurate reading, add a Helio Room Sensor in the {room} and choose it as the reference.",
        "A difference of around {offset}°C is common when the thermostat hangs near a heat source. Go to Settings > Device > Temperature offset and lower it by {offset}°C. The heating will then aim for the temperature you actually feel in the {room}."],
    ]],
  },
  {
    name: "sharing",
    variants: [[
      ["How do I give my partner access to the thermostat?",
        "Can {members} people in the family control the heating from their own phones?"],
      ["Yes, {name}. Go to Settings > Home > Members > Invite and enter their email. They install the Helio app, accept the invite and can control every device in the home. You can invite up to 10 members, and remove anyone at any time from the same screen.",
        "Absolutely: under Settings > Home > Members you can invite people by email. Each member uses their own Helio login, and geofencing works per person, so the heating knows when the last one leaves."],
    ]],
  },
  {
    name: "radiator_valve",
    variants: [[
      ["The Helio Radiator Valve in the {room} makes a buzzing noise at night.",
        "My radiator valve keeps clicking and the radiator is cold."],
      ["Sorry about the noise, {name}. A valve that buzzes or clicks is usually re-calibrating. Please run a calibration: in the app open the valve, then Settings > Calibrate; it takes about two minutes. You can also turn on Quiet mode (Settings > Quiet mode) so it moves more slowly at night. If the radiator stays cold after calibration, check that the valve sits fully on its adapter.",
        "That sound usually means the valve can't find its end positions. Open the valve in the app and choose Settings > Calibrate. If you fitted it with an adapter, make sure the adapter is tight, since a loose one stops the pin from moving. Quiet mode (Settings > Quiet mode) also makes night-time adjustments much quieter."],
    ]],
  },
  {
    name: "handover",
    variants: [[
      ["This is the third time my {device} has lost its settings. I want to talk to a person.",
        "I've tried everything in the help center. Can I speak to someone?"],
      ["I understand, {name}, and I'm sorry it keeps happening. I've created ticket {ticket} with the details of this chat so you don't need to repeat yourself. A support specialist will contact you by email within one working day, or you can call us on weekdays from 8 am to 6 pm and quote {ticket}.",
        "Of course. I've passed this conversation to our specialist team as ticket {ticket}; someone will reply within one working day. If it's urgent because your home has no heating, reply \"urgent\" and we'll call you back today."],
    ]],
  },
];
