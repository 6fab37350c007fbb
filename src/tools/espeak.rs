//! espeak-ng's library, libespeak-ng, for speech with word times.
//!
//! The `espeak-ng` program writes a WAV file and nothing else; the library
//! also calls back with an event for each word, carrying the word's place
//! in the text and its position in the audio. The library is loaded when it
//! is first needed, so a server that speaks through an API runs without it.
//! It keeps global state, so every call holds one lock; synthesis runs in
//! synchronous mode on the calling thread, which the callback relies on.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::sync::{Mutex, OnceLock};

use libloading::Library;
use tokio_util::sync::CancellationToken;

use super::ToolError;

/// One spoken word, as the library reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpokenWord {
    /// Characters of the text before the word.
    pub char_offset: usize,
    /// Seconds from the start of the audio.
    pub start: f64,
}

/// Speech for one text: mono 16-bit samples and where each word starts.
#[derive(Debug, Clone, Default)]
pub struct Speech {
    /// Samples per second.
    pub sample_rate: u32,
    /// The audio.
    pub samples: Vec<i16>,
    /// Word starts, in the order spoken.
    pub words: Vec<SpokenWord>,
}

impl Speech {
    /// Length of the audio, in seconds.
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The audio as a WAV file.
    pub fn wav(&self) -> Vec<u8> {
        let data = (self.samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(44 + data as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        out.extend_from_slice(&(self.sample_rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        for sample in &self.samples {
            out.extend_from_slice(&sample.to_le_bytes());
        }
        out
    }
}

/// `espeak_EVENT` from `speak_lib.h`.
#[repr(C)]
struct Event {
    kind: c_int,
    unique_identifier: c_uint,
    text_position: c_int,
    length: c_int,
    audio_position: c_int,
    sample: c_int,
    user_data: *mut c_void,
    id: [u8; 8],
}

const EVENT_LIST_TERMINATED: c_int = 0;
const EVENT_WORD: c_int = 1;
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
const POS_CHARACTER: c_int = 1;
const CHARS_UTF8: c_uint = 1;
const EE_OK: c_int = 0;

type Callback = unsafe extern "C" fn(*mut i16, c_int, *mut Event) -> c_int;

/// `espeak_VOICE` from `speak_lib.h`: what `espeak_SetVoiceByProperties`
/// looks for.
#[repr(C)]
struct VoiceQuery {
    name: *const c_char,
    languages: *const c_char,
    identifier: *const c_char,
    gender: u8,
    age: u8,
    variant: u8,
    xx1: u8,
    score: c_int,
    spare: *mut c_void,
}

/// The library's entry points, resolved once.
struct Engine {
    sample_rate: u32,
    set_voice: unsafe extern "C" fn(*const c_char) -> c_int,
    set_voice_like: unsafe extern "C" fn(*mut VoiceQuery) -> c_int,
    synth: unsafe extern "C" fn(
        *const c_void,
        usize,
        c_uint,
        c_int,
        c_uint,
        c_uint,
        *mut c_uint,
        *mut c_void,
    ) -> c_int,
    /// Kept loaded for as long as the entry points are used.
    _library: Library,
}

/// What the callback collects for the synthesis running on this thread.
struct Collector {
    speech: Speech,
    token: CancellationToken,
}

thread_local! {
    static COLLECTOR: RefCell<Option<Collector>> = const { RefCell::new(None) };
}

/// Receives audio and events; returns 1 to stop when the job is cancelled.
unsafe extern "C" fn on_synth(wav: *mut i16, count: c_int, events: *mut Event) -> c_int {
    COLLECTOR.with_borrow_mut(|collector| {
        let Some(c) = collector else { return 1 };
        if !wav.is_null() && count > 0 {
            // SAFETY: the library passes `count` samples at `wav`.
            let samples = unsafe { std::slice::from_raw_parts(wav, count as usize) };
            c.speech.samples.extend_from_slice(samples);
        }
        let mut event = events;
        while !event.is_null() {
            // SAFETY: the list ends with an EVENT_LIST_TERMINATED entry.
            let e = unsafe { &*event };
            if e.kind == EVENT_LIST_TERMINATED {
                break;
            }
            if e.kind == EVENT_WORD {
                c.speech.words.push(SpokenWord {
                    // Positions count characters from 1.
                    char_offset: (e.text_position.max(1) - 1) as usize,
                    start: f64::from(e.audio_position.max(0)) / 1000.0,
                });
            }
            event = event.wrapping_add(1);
        }
        i32::from(c.token.is_cancelled())
    })
}

const LIBRARY_NAMES: [&str; 2] = ["libespeak-ng.so.1", "libespeak-ng.so"];

/// Loads and initialises the library.
fn load() -> Result<Engine, String> {
    let missing = |why: String| {
        format!(
            "libespeak-ng could not be loaded ({why}). Install it with: sudo apt-get install -y espeak-ng"
        )
    };
    let mut last = String::new();
    let library = LIBRARY_NAMES
        .iter()
        // SAFETY: loading libespeak-ng runs no initialisers with preconditions.
        .find_map(|name| match unsafe { Library::new(name) } {
            Ok(lib) => Some(lib),
            Err(err) => {
                last = err.to_string();
                None
            }
        })
        .ok_or_else(|| missing(last))?;
    // SAFETY: the signatures are those of speak_lib.h.
    unsafe {
        let initialize = *library
            .get::<unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int>(
                b"espeak_Initialize\0",
            )
            .map_err(|e| missing(e.to_string()))?;
        let set_callback = *library
            .get::<unsafe extern "C" fn(Callback)>(b"espeak_SetSynthCallback\0")
            .map_err(|e| missing(e.to_string()))?;
        let set_voice = *library
            .get(b"espeak_SetVoiceByName\0")
            .map_err(|e| missing(e.to_string()))?;
        let set_voice_like = *library
            .get(b"espeak_SetVoiceByProperties\0")
            .map_err(|e| missing(e.to_string()))?;
        let synth = *library
            .get(b"espeak_Synth\0")
            .map_err(|e| missing(e.to_string()))?;
        let rate = initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, std::ptr::null(), 0);
        if rate <= 0 {
            return Err(
                "libespeak-ng could not find its voice data. Reinstall it with: \
                 sudo apt-get install --reinstall -y espeak-ng-data"
                    .into(),
            );
        }
        set_callback(on_synth);
        Ok(Engine {
            sample_rate: rate as u32,
            set_voice,
            set_voice_like,
            synth,
            _library: library,
        })
    }
}

fn engine() -> Result<&'static Mutex<Engine>, ToolError> {
    static ENGINE: OnceLock<Result<Mutex<Engine>, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| load().map(Mutex::new))
        .as_ref()
        .map_err(|why| ToolError::failed(why.clone()))
}

/// Speaks `text` with `voice`, blocking the thread until it is done or
/// `token` fires.
pub fn speak(voice: &str, text: &str, token: &CancellationToken) -> Result<Speech, ToolError> {
    let engine = engine()?;
    let engine = engine
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let name = CString::new(voice).map_err(|_| ToolError::failed("A voice name has a NUL."))?;
    let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
    // A voice file's name first; else, as the espeak-ng program does, a
    // voice that speaks that language (`en-gb`).
    let language = CString::new(voice.split('+').next().unwrap_or(voice)).unwrap_or_default();
    let mut query = VoiceQuery {
        name: name.as_ptr(),
        languages: language.as_ptr(),
        identifier: std::ptr::null(),
        gender: 0,
        age: 0,
        variant: 0,
        xx1: 0,
        score: 0,
        spare: std::ptr::null_mut(),
    };
    // SAFETY: the strings and the query outlive both calls.
    let found = unsafe {
        (engine.set_voice)(name.as_ptr()) == EE_OK || (engine.set_voice_like)(&mut query) == EE_OK
    };
    if !found {
        return Err(ToolError::failed(format!(
            "espeak-ng has no voice \"{voice}\"."
        )));
    }
    COLLECTOR.set(Some(Collector {
        speech: Speech {
            sample_rate: engine.sample_rate,
            ..Speech::default()
        },
        token: token.clone(),
    }));
    let bytes = text.as_bytes_with_nul();
    // SAFETY: synchronous mode calls `on_synth` on this thread only, before
    // returning; the text outlives the call.
    let status = unsafe {
        (engine.synth)(
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            POS_CHARACTER,
            0,
            CHARS_UTF8,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    let collected = COLLECTOR.take();
    if token.is_cancelled() {
        return Err(ToolError::Cancelled);
    }
    if status != EE_OK {
        return Err(ToolError::failed(format!(
            "espeak-ng could not speak the text (error {status})."
        )));
    }
    Ok(collected.map(|c| c.speech).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_reported_in_order_inside_the_audio() {
        let text = "Calm rivers carve deep valleys. Over many years!";
        let speech = speak("en", text, &CancellationToken::new()).expect("libespeak-ng");
        assert!(speech.sample_rate >= 8000);
        assert!(speech.duration() > 1.0, "{}", speech.duration());
        let starts: Vec<usize> = text
            .char_indices()
            .filter(|(i, c)| !c.is_whitespace() && (*i == 0 || text[..*i].ends_with(' ')))
            .map(|(i, _)| i)
            .collect();
        let offsets: Vec<usize> = speech.words.iter().map(|w| w.char_offset).collect();
        assert_eq!(offsets[..starts.len()], starts, "{:?}", speech.words);
        for pair in speech.words[..starts.len()].windows(2) {
            assert!(pair[0].start < pair[1].start, "{:?}", speech.words);
        }
        assert!(speech.words.last().unwrap().start < speech.duration());
        assert_eq!(speech.wav().len(), 44 + speech.samples.len() * 2);
    }

    #[test]
    fn a_language_code_finds_its_voice() {
        for voice in ["en-gb", "en-us", "es", "en-us+f3"] {
            let speech = speak(voice, "Hello there.", &CancellationToken::new());
            assert!(speech.is_ok_and(|s| !s.samples.is_empty()), "{voice}");
        }
        let unknown = speak("xx-nowhere", "Hello.", &CancellationToken::new());
        assert!(unknown.unwrap_err().to_string().contains("xx-nowhere"));
    }

    #[test]
    fn a_cancelled_token_stops_synthesis() {
        let token = CancellationToken::new();
        token.cancel();
        assert_eq!(
            speak("en", "Nothing will be said.", &token).unwrap_err(),
            ToolError::Cancelled
        );
    }
}
